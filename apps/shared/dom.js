// Small DOM helpers shared by the browser apps (the demo chat, the admin dashboard). Served next to each app's
// own files (`/chat/dom.js`, `/admin/dom.js`), so each page imports it as `./dom.js`.

/** The element with this id (or null). */
export const $ = (id) => document.getElementById(id);

/**
 * A new element: `props` become attributes, except `class` (className), `dataset` (merged into dataset) and
 * `onclick` (a click listener); children are nodes or values shown as text (never parsed as HTML).
 */
export const el = (tag, props = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') node.className = v;
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else if (k === 'onclick') node.addEventListener('click', v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};
