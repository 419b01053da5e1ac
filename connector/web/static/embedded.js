// Inside the Shopify admin: every link and form of this multi-page app carries a fresh
// session token (they expire after a minute), taken from App Bridge when it is used.
(function () {
  "use strict";
  if (!window.shopify || typeof window.shopify.idToken !== "function") return;
  document.addEventListener("click", async function (event) {
    const link = event.target.closest && event.target.closest("a[href]");
    if (!link || link.origin !== location.origin || event.defaultPrevented || event.button !== 0 ||
        event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    const url = new URL(link.href);
    url.searchParams.set("id_token", await window.shopify.idToken());
    location.assign(url.toString());
  });
  document.addEventListener("submit", async function (event) {
    const form = event.target;
    event.preventDefault();
    let field = form.querySelector('input[name="id_token"]');
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "id_token";
      form.appendChild(field);
    }
    field.value = await window.shopify.idToken();
    if (event.submitter && event.submitter.name) {  // submit() leaves the pressed button out
      const pressed = document.createElement("input");
      pressed.type = "hidden";
      pressed.name = event.submitter.name;
      pressed.value = event.submitter.value;
      form.appendChild(pressed);
    }
    HTMLFormElement.prototype.submit.call(form);  // no second submit event
  });
})();
