// The page's language for its scripts: _() translates a message, label() names an internal key.
// Both come from the server's gettext catalogues (embedded in the page as #strings).
"use strict";
window.dialboxI18n = (function () {
  const el = document.getElementById("strings");
  const strings = el ? JSON.parse(el.textContent) : { messages: {}, labels: {} };
  return {
    _: (message) => strings.messages[message] || message,
    label: (family, key) => ((strings.labels[family] || {})[key]) || (key === null || key === undefined ? "" : String(key)),
  };
})();
