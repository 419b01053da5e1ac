// The packing room's print view: its Print button opens the browser's print dialog.
(function () {
  "use strict";
  const button = document.querySelector("[data-print]");
  if (button) button.addEventListener("click", function () { window.print(); });
})();
