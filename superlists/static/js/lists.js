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
  const actions = document.getElementById("id_item_actions");
  const table = document.getElementById("id_list_table");
  if (!actions || !table) return;
  actions.addEventListener("submit", function (event) {
    const button = event.submitter;
    if (!button) return;
    event.preventDefault();
    const row = button.closest("tr");
    fetch(button.formAction, {
      method: "POST",
      body: new FormData(actions),
      headers: { "X-Requested-With": "fetch" },
      credentials: "same-origin",
    }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      if (button.classList.contains("js-toggle")) {
        const done = row.classList.toggle("done");
        button.textContent = done ? "Undo" : "Done";
      } else {
        row.remove();
        table.querySelectorAll("tr").forEach(function (tr, index) {
          tr.cells[0].textContent = index + 1 + ":";
        });
      }
    }).catch(function () {
      actions.action = button.formAction;
      HTMLFormElement.prototype.submit.call(actions);
    });
  });
})();
