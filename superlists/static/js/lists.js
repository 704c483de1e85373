// Small enhancements; every page works without them.
(function () {
  "use strict";

  // The item error goes away as soon as the visitor types again.
  const input = document.getElementById("id_text");
  if (input) {
    input.addEventListener("input", function () {
      input.classList.remove("is-invalid");
      const error = document.getElementById("id_text_error");
      if (error) error.remove();
    });
  }

  // Done/undo and delete without a page reload; on any failure fall back to a normal submit.
  const table = document.getElementById("id_list_table");
  if (!table) return;
  table.addEventListener("submit", function (event) {
    const form = event.target;
    const toggling = form.classList.contains("js-toggle");
    if (!toggling && !form.classList.contains("js-delete")) return;
    event.preventDefault();
    const row = form.closest("tr");
    fetch(form.action, {
      method: "POST",
      body: new FormData(form),
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      if (toggling) {
        const done = row.classList.toggle("done");
        const button = form.querySelector("button");
        button.textContent = done ? "Undo" : "Done";
      } else {
        row.remove();
        table.querySelectorAll("tr").forEach(function (tr, index) {
          tr.cells[0].textContent = index + 1 + ":";
        });
      }
    }).catch(function () {
      form.submit();
    });
  });
})();
