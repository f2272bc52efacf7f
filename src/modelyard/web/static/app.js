// modelyard web UI: small progressive enhancement. Every page works without it.
// - "Copy" buttons copy a command, a digest or a new API key.
// - Forms marked data-confirm ask in a <dialog> before they are sent (the server checks anyway).
"use strict";
(function () {
  function copy(button) {
    var source = button.getAttribute("data-copy");
    var text = button.getAttribute("data-copy-text");
    if (source) { var node = document.getElementById(source); text = node ? node.textContent : ""; }
    if (!navigator.clipboard || !text) { return; }
    navigator.clipboard.writeText(text.trim()).then(function () {
      var label = button.textContent; button.textContent = "Copied";
      setTimeout(function () { button.textContent = label; }, 1500);
    });
  }

  function confirmSubmit(form, event) {
    var dialog = document.getElementById(form.getAttribute("data-confirm"));
    if (!dialog || typeof dialog.showModal !== "function" || form.dataset.confirmed === "yes") { return; }
    event.preventDefault();
    var message = dialog.querySelector("[data-confirm-message]");
    if (message) { message.textContent = form.getAttribute("data-confirm-message") || ""; }
    dialog.returnValue = "";
    dialog.showModal();
    dialog.addEventListener("close", function onClose() {
      dialog.removeEventListener("close", onClose);
      if (dialog.returnValue === "confirm") { form.dataset.confirmed = "yes"; form.requestSubmit(); }
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.copy");
    if (button) { copy(button); }
  });
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.hasAttribute && form.hasAttribute("data-confirm")) { confirmSubmit(form, event); }
  });
})();
