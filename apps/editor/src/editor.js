// Demo collaborative editor (/editor): CodeMirror 6 bound to a Yjs document with y-codemirror.next; the
// document travels over the Switchboard SDK's own connection (`openDocument` from @switchboard/client/yjs),
// the same WebSocket a chat would use. Remote cursors and the presence list come from Yjs awareness.
// Bundled by build.mjs (esbuild) into dist/editor.js.
import { SwitchboardClient } from '@switchboard/client';
import { openDocument } from '@switchboard/client/yjs';
import * as Y from 'yjs';
import { Awareness } from 'y-protocols/awareness';
import { Compartment, EditorState } from '@codemirror/state';
import { EditorView, drawSelection, highlightActiveLine, keymap, lineNumbers } from '@codemirror/view';
import { defaultKeymap, indentWithTab } from '@codemirror/commands';
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next';

const $ = (id) => document.getElementById(id);
const COLORS = ['#e8590c', '#2f9e44', '#1971c2', '#c2255c', '#6741d9', '#0c8599', '#e67700', '#5c940d'];

/** A stable colour per name, so a user keeps it across reloads and pages. */
function colorOf(name) {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return COLORS[h % COLORS.length];
}

const params = new URLSearchParams(location.search);
if (params.get('username')) $('username').value = params.get('username');
if (params.get('doc')) $('document').value = params.get('doc');

/** The open session: client, Y.Doc, awareness, handle, view. */
let session = null;

function setStatus(status) {
  const el = $('status');
  el.textContent = status;
  el.className = `status ${status}`;
  el.dataset.status = status;
}

function notice(text) {
  const el = $('notice');
  el.textContent = text ?? '';
  el.hidden = !text;
}

function renderPresence(awareness) {
  const list = $('presence');
  list.textContent = '';
  const states = [...awareness.getStates().entries()].filter(([, s]) => s && s.user);
  states.sort(([a], [b]) => (a === awareness.clientID ? -1 : b === awareness.clientID ? 1 : a - b));
  for (const [id, state] of states) {
    const li = document.createElement('li');
    li.dataset.clientId = String(id);
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = state.user.color;
    const name = document.createElement('span');
    name.className = 'name';
    name.textContent = state.user.name;
    li.append(swatch, name);
    if (id === awareness.clientID) {
      const me = document.createElement('span');
      me.className = 'me';
      me.textContent = '(you)';
      li.append(me);
    }
    list.append(li);
  }
}

function open(username, channel, token) {
  const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`;
  const client = new SwitchboardClient({ url, username, token: token || undefined });
  const ydoc = new Y.Doc();
  const ytext = ydoc.getText('codemirror');
  const awareness = new Awareness(ydoc);
  const color = colorOf(username);
  awareness.setLocalStateField('user', { name: username, color, colorLight: `${color}33` });
  const handle = openDocument(client, channel, ydoc, { awareness });
  const editable = new Compartment();
  const view = new EditorView({
    parent: $('editor'),
    state: EditorState.create({
      doc: ytext.toString(),
      extensions: [
        lineNumbers(),
        drawSelection(),
        highlightActiveLine(),
        EditorView.lineWrapping,
        keymap.of([...yUndoManagerKeymap, ...defaultKeymap, indentWithTab]),
        editable.of(EditorView.editable.of(true)),
        yCollab(ytext, awareness, { undoManager: new Y.UndoManager(ytext) }),
      ],
    }),
  });

  // Presence: re-rendered once per animation frame however many awareness changes arrive.
  let presenceQueued = false;
  const queuePresence = () => {
    if (presenceQueued) return;
    presenceQueued = true;
    requestAnimationFrame(() => {
      presenceQueued = false;
      if (session?.awareness === awareness) renderPresence(awareness);
    });
  };
  awareness.on('change', queuePresence);
  renderPresence(awareness);

  client.on('status', ({ status }) => setStatus(status));
  handle.on('state', ({ state }) => {
    $('doc-state').textContent = state;
    $('doc-state').dataset.state = state;
  });
  handle.on('opened', ({ writable }) => {
    $('readonly').hidden = writable;
    view.dispatch({ effects: editable.reconfigure(EditorView.editable.of(writable)) });
    notice(null);
  });
  handle.on('error', (err) => {
    if (err.code === 'READ_ONLY') $('readonly').hidden = false;
    else notice(`${err.code}: ${err.message}`);
  });
  handle.on('ended', (err) => notice(`The document cannot be opened: ${err.code}: ${err.message}`));
  client.on('disconnected', ({ code, reason, willReconnect }) => {
    if (!willReconnect) notice(`Disconnected (${code} ${reason})`);
  });

  $('doc-name').textContent = channel;
  $('doc-state').textContent = handle.state;
  $('doc-state').dataset.state = handle.state;
  session = { client, ydoc, ytext, awareness, handle, view, username };
  // For tests and the console: the live objects of this page.
  window.editorDemo = { ...session, text: () => ytext.toString() };
  client.connect().catch((err) => notice(`Connect failed: ${err.code ?? ''} ${err.message}`));
  view.focus();
}

function close() {
  if (session === null) return;
  const { client, awareness, handle, view } = session;
  session = null;
  handle.destroy();
  client.close();
  view.destroy();
  awareness.destroy();
  $('presence').textContent = '';
  $('doc-name').textContent = 'No document open';
  $('doc-state').textContent = '';
  $('doc-state').dataset.state = 'closed';
  $('readonly').hidden = true;
  setStatus('closed');
}

$('open-form').addEventListener('submit', (ev) => {
  ev.preventDefault();
  close();
  notice(null);
  open($('username').value.trim(), $('document').value.trim(), $('token').value.trim());
  $('open').disabled = true;
  $('close').disabled = false;
});

$('close').addEventListener('click', () => {
  close();
  $('open').disabled = false;
  $('close').disabled = true;
});
