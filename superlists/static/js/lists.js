// Small enhancements; every page works without them.
(function () {
  "use strict";

  // The item error hides as soon as the visitor types again. Bootstrap shows .invalid-feedback
  // only after an .is-invalid box, so taking the class off hides it; it stays in the page.
  const input = document.getElementById("id_text");
  if (input) {
    input.addEventListener("input", function () {
      input.classList.remove("is-invalid");
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
        button.setAttribute("aria-pressed", done ? "true" : "false");
      } else {
        // A keyboard user's focus would vanish with the row: move it to the next row's
        // Delete button (or the previous one's, or the item box).
        const hadFocus = document.activeElement === button;
        const neighbour = row.nextElementSibling || row.previousElementSibling;
        row.remove();
        table.querySelectorAll("tr").forEach(function (tr, index) {
          tr.cells[0].textContent = index + 1 + ":";
        });
        const next = neighbour ? neighbour.querySelector(".js-delete") : input;
        if (hadFocus && next) next.focus();
      }
    }).catch(function () {
      actions.action = button.formAction;
      HTMLFormElement.prototype.submit.call(actions);
    });
  });
})();
