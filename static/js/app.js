// The portal's small behaviours: toasts fade out, destructive forms ask first.
// Every script of the screens lives in static files like this one: the Content-Security-Policy
// forbids inline <script> blocks and on...= attributes, so templates mark elements with data-*
// attributes and the listeners below act on them.
(function () {
  function hideToasts(root) {
    (root || document).querySelectorAll(".toast[data-autohide]").forEach(function (el) {
      setTimeout(function () { el.classList.remove("show"); el.remove(); }, 6000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { hideToasts(); });
  // Toasts sent by htmx responses: HX-Trigger {"toast": {"level": "success", "message": "..."}}
  // (the event bubbles from the element that asked up to the document: one listener there, one toast)
  document.addEventListener("toast", function (evt) { showToast(evt.detail); });
  function showToast(detail) {
    var level = { error: "danger", success: "success", warning: "warning" }[detail.level] || "info";
    var el = document.createElement("div");
    el.className = "toast show align-items-center border-0 text-bg-" + level;
    el.setAttribute("role", "status");
    el.setAttribute("data-autohide", "");
    var body = document.createElement("div");
    body.className = "toast-body";
    body.textContent = detail.message;
    el.appendChild(body);
    document.getElementById("toasts").appendChild(el);
    hideToasts(el.parentNode);
  }
  // <form data-confirm="Delete X?"> asks in a modal before submitting.
  document.addEventListener("submit", function (evt) {
    var form = evt.target;
    if (!form.dataset || !form.dataset.confirm || form.dataset.confirmed) return;
    evt.preventDefault();
    var modalEl = document.getElementById("confirm-modal");
    document.getElementById("confirm-text").textContent = form.dataset.confirm;
    var bs = window.bootstrap || (window.tabler && window.tabler.bootstrap);
    var modal = bs ? bs.Modal.getOrCreateInstance(modalEl) : null;
    var ok = document.getElementById("confirm-ok");
    ok.onclick = function () {
      form.dataset.confirmed = "1";
      if (modal) modal.hide();
      if (form.requestSubmit) form.requestSubmit(); else form.submit();
    };
    if (modal) modal.show(); else if (window.confirm(form.dataset.confirm)) ok.onclick();
  }, true);
  // Workflow editor: an approver row shows the user or group field its kind needs.
  document.addEventListener("change", function (evt) {
    if (evt.target.matches(".approver-kind")) {
      evt.target.closest(".approver-row").dataset.kind = evt.target.value;
    }
  });
  // <input data-select-on-click>: a click selects the whole value (a token shown once, to copy).
  document.addEventListener("click", function (evt) {
    if (evt.target.matches && evt.target.matches("[data-select-on-click]")) evt.target.select();
  });
  // Select-all checkbox of bulk tables.
  document.addEventListener("change", function (evt) {
    if (evt.target.matches("[data-select-all]")) {
      document.querySelectorAll("input[name=ids]").forEach(function (box) { box.checked = evt.target.checked; });
    }
  });
})();
