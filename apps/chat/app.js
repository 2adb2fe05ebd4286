// Switchboard demo chat. Uses only the browser SDK served by the server at /sdk/switchboard.js.
// Rooms (member counts, unread), messages with sender and time, history on join, presence, typing,
// private messages, online users, connection status; survives reconnects (missed messages are recovered).
// A room `lobby` is the channel `chat:lobby`: the server's default config stores the `chat` namespace
// (persist), so rooms keep their history across restarts. Messages show `text` or `content` (the README's
// examples publish `{"content": ...}`), whoever sent them (this page, wscat, the HTTP API, a backend).
// Scale: the online list is fetched once per connection and then kept from user_online / user_offline
// events (option userEvents); room member lists load one page, counts come from subscription.members.
import { SwitchboardClient } from '/sdk/switchboard.js';
import { $, el } from './dom.js';

const DEFAULT_ROOMS = ['lobby', 'general', 'random'];
const ROOM_PREFIX = 'chat:'; // the rooms' namespace (persisted by default)
const TYPING_IDLE_MS = 2000;
const MEMBER_PAGE = 100; // members listed per room (the count covers everyone)

const state = {
  client: null,
  me: { userId: null, username: '' },
  rooms: new Map(), // name -> { sub, messages: Map<key, msg>, members: Map<connId, member>, unread, typing: [] }
  dms: new Map(), // userId -> { username, messages: [], unread }
  online: new Map(), // userId -> { user_id, username }
  onlineLoad: 0, // generation of the online list fetch in flight
  onlinePending: null, // user events received while that fetch is in flight, applied after it
  names: new Map(), // actor id -> username
  active: { kind: 'room', id: 'lobby' },
  status: 'disconnected',
  typingTimer: null,
  typingOn: false,
};

// ---------------------------------------------------------------- connection

function slug(name) {
  return 'u-' + name.toLowerCase().replace(/[^a-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
}

function connect(username, token) {
  if (state.client) state.client.close();
  state.me = { userId: slug(username), username };
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const client = new SwitchboardClient({
    url: `${scheme}://${location.host}/ws`,
    username,
    token: token || undefined,
    params: { user_id: state.me.userId },
    reconnect: { baseDelayMs: 250, maxDelayMs: 3000 },
    userEvents: true, // joins $users: the server sends user_online / user_offline only to opted-in connections
  });
  state.client = client;
  window.chatClient = client; // handy in the console

  client.on('status', ({ status }) => {
    if (state.client === client) renderStatus(status);
  });
  // The online list is loaded each time the server confirms the $users join (once per connection: events
  // missed while disconnected are not replayed), then kept from user events. If the join is refused, the
  // list is a snapshot taken at each connect.
  const userEvents = client.userEventsSubscription;
  userEvents.on('subscribed', () => loadOnline());
  client.on('connected', (info) => {
    if (info.user_id) state.me.userId = info.user_id;
    if (userEvents.state === 'unsubscribed') loadOnline();
  });
  client.on('user_online', (u) => onUserEvent('online', u));
  client.on('user_offline', (u) => onUserEvent('offline', u));
  client.on('private', onPrivate);
  client.on('error', (err) => console.warn('[chat]', err.code, err.message));

  for (const room of roomNames()) joinRoom(room);
  renderStatus('connecting');
  client.connect().catch((err) => showNotice(`Could not connect: ${err.message}`));
  render();
}

function roomNames() {
  const names = new Set(DEFAULT_ROOMS);
  for (const name of state.rooms.keys()) names.add(name);
  return [...names];
}

function joinRoom(name) {
  const client = state.client;
  let room = state.rooms.get(name);
  if (!room) {
    room = { sub: null, messages: new Map(), members: new Map(), unread: 0, typing: [] };
    state.rooms.set(name, room);
  }
  if (!client) return room;
  const sub = client.subscribe(ROOM_PREFIX + name);
  room.sub = sub;
  sub.on('subscribed', async (ev) => {
    if (!ev.resubscribed) await loadHistory(name);
    await loadMembers(name);
    render();
  });
  sub.on('gap', async () => {
    if (isActive('room', name)) showNotice('Some messages could not be recovered: history reloaded');
    await loadHistory(name);
    render();
  });
  sub.on('replay_complete', (ev) => {
    const n = ev.replayedCount;
    if (n > 0 && isActive('room', name)) showNotice(`Reconnected: ${n} missed message${n === 1 ? '' : 's'} recovered`);
  });
  sub.on('message', (pub) => {
    addRoomMessage(name, pub);
    if (!isActive('room', name)) room.unread++;
    render();
  });
  sub.on('members', () => render());
  sub.on('presence', (p) => {
    if (p.action === 'joined') room.members.set(p.connection_id, p);
    else room.members.delete(p.connection_id);
    if (p.user_id && p.username) state.names.set(p.user_id, p.username);
    render();
  });
  sub.on('typing', (t) => {
    if (t.user_id && t.username) state.names.set(t.user_id, t.username);
    room.typing = (t.typing_users || []).filter((id) => id !== state.me.userId);
    render();
  });
  sub.on('error', (err) => { if (!err.willRetry) showNotice(`${name}: ${err.message}`); });
  return room;
}

async function loadHistory(name) {
  try {
    const { publications } = await state.client.history(ROOM_PREFIX + name, { limit: 50 });
    for (const pub of publications) addRoomMessage(name, pub);
  } catch (err) {
    console.warn('[chat] history', err);
  }
}

async function loadMembers(name) {
  const room = state.rooms.get(name);
  try {
    // First page only; presence events keep it current, `sub.members` counts everyone.
    const { members } = await state.client.presencePage(ROOM_PREFIX + name, { limit: MEMBER_PAGE });
    room.members = new Map(members.map((m) => [m.connection_id, m]));
    for (const m of members) if (m.user_id && m.username) state.names.set(m.user_id, m.username);
  } catch (err) {
    console.warn('[chat] presence', err);
  }
}

// The online list: one fetch once the $users join is confirmed (every change after it comes as an event),
// then user_online / user_offline events. Events arriving during the fetch are applied after its reply.
async function loadOnline() {
  const load = ++state.onlineLoad;
  state.onlinePending = [];
  try {
    const users = await state.client.onlineUsers();
    if (load !== state.onlineLoad) return;
    state.online = new Map(users.map((u) => [u.user_id, { user_id: u.user_id, username: u.username }]));
    for (const u of users) if (u.username) state.names.set(u.user_id, u.username);
  } catch (err) {
    if (load !== state.onlineLoad) return;
    console.warn('[chat] online users', err);
  }
  const pending = state.onlinePending;
  state.onlinePending = null;
  for (const [kind, u] of pending) applyUserEvent(kind, u);
  render();
}

function onUserEvent(kind, u) {
  if (state.onlinePending) state.onlinePending.push([kind, u]);
  else {
    applyUserEvent(kind, u);
    render();
  }
}

function applyUserEvent(kind, u) {
  if (kind === 'online') {
    state.online.set(u.user_id, { user_id: u.user_id, username: u.username });
    if (u.username) state.names.set(u.user_id, u.username);
  } else if (u.user_id !== state.me.userId) {
    state.online.delete(u.user_id); // never ourselves: this page is connected
  }
}

function addRoomMessage(name, pub) {
  const room = state.rooms.get(name);
  const key = pub.seq !== undefined ? `${pub.epoch}:${pub.seq}` : pub.messageId;
  if (room.messages.has(key)) return;
  room.messages.set(key, {
    key,
    seq: pub.seq ?? Number.MAX_SAFE_INTEGER,
    text: messageText(pub.data),
    sender: String(pub.data.username ?? state.names.get(pub.senderId) ?? pub.senderId ?? 'server'),
    senderId: pub.senderId,
    time: pub.timestamp,
    replayed: pub.replayed,
  });
}

/** The text of a message, whichever field its sender used: `text` (this page), `content` (the README's
 * examples, the test page), `message`; anything else is shown as JSON. */
function messageText(data) {
  for (const field of ['text', 'content', 'message', 'body']) {
    if (typeof data?.[field] === 'string') return data[field];
  }
  return JSON.stringify(data ?? null);
}

function onPrivate(pm) {
  const mine = pm.from === state.me.userId;
  const peer = mine ? pm.to : pm.from;
  const dm = dmFor(peer, mine ? undefined : pm.data.username);
  dm.messages.push({ key: pm.messageId, text: messageText(pm.data), sender: mine ? state.me.username : String(pm.data.username ?? peer), senderId: pm.from, time: pm.timestamp });
  if (!isActive('dm', peer)) dm.unread++;
  render();
}

function dmFor(userId, username) {
  let dm = state.dms.get(userId);
  if (!dm) state.dms.set(userId, (dm = { username: username || state.names.get(userId) || userId, messages: [], unread: 0 }));
  return dm;
}

// ---------------------------------------------------------------- actions

async function send(text) {
  const client = state.client;
  if (!client || !text) return;
  setTyping(false);
  const { kind, id } = state.active;
  try {
    if (kind === 'room') {
      await client.publish(ROOM_PREFIX + id, { text, username: state.me.username });
    } else {
      await client.sendPrivate(id, { text, username: state.me.username });
      dmFor(id).messages.push({ key: `local-${Date.now()}-${Math.random()}`, text, sender: state.me.username, senderId: state.me.userId, time: new Date().toISOString() });
      render();
    }
  } catch (err) {
    showNotice(`Not sent: ${err.message}`);
  }
}

function setTyping(on) {
  clearTimeout(state.typingTimer);
  if (on) state.typingTimer = setTimeout(() => setTyping(false), TYPING_IDLE_MS);
  if (state.typingOn === on || state.active.kind !== 'room' || !state.client) return;
  state.typingOn = on;
  state.client.typing(ROOM_PREFIX + state.active.id, on);
}

function select(kind, id) {
  if (state.typingOn) setTyping(false);
  state.active = { kind, id };
  if (kind === 'room') state.rooms.get(id).unread = 0;
  else dmFor(id).unread = 0;
  $('notice').hidden = true;
  render();
}

function isActive(kind, id) {
  return state.active.kind === kind && state.active.id === id;
}

let noticeTimer = null;
function showNotice(text) {
  const n = $('notice');
  n.textContent = text;
  n.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => (n.hidden = true), 8000);
}

// ---------------------------------------------------------------- rendering

const STATUS_TEXT = { disconnected: 'offline', connecting: 'connecting…', connected: 'connected', reconnecting: 'reconnecting…', closed: 'offline' };

// The connection controls follow the client's status: Connect only while offline (the name is locked while
// a connection is open or being made), Disconnect while connecting, connected or retrying, the composer only
// while connected.
function renderStatus(status) {
  state.status = status;
  const s = $('status');
  s.textContent = STATUS_TEXT[status] ?? status;
  s.className = `status ${status}`;
  s.dataset.status = status;
  const offline = status === 'closed' || status === 'disconnected';
  $('connect').disabled = !offline;
  $('connect').textContent = offline && state.client ? 'Reconnect' : 'Connect';
  $('username').readOnly = !offline;
  $('token').readOnly = !offline;
  $('disconnect').disabled = offline;
  $('disconnect').textContent = status === 'reconnecting' || status === 'connecting' ? 'Cancel' : 'Disconnect';
  $('message').disabled = status !== 'connected';
  $('send').disabled = status !== 'connected';
  $('message').placeholder = status === 'connected' ? 'Write a message' : status === 'reconnecting' ? 'Reconnecting… messages will be recovered' : 'Connect to write';
  document.body.dataset.status = status;
  render();
}

function fmtTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function render() {
  // rooms
  const rooms = $('rooms');
  rooms.replaceChildren(
    ...roomNames().map((name) => {
      const room = state.rooms.get(name);
      const count = room?.sub?.members ?? 0;
      return el(
        'li',
        { class: isActive('room', name) ? 'active' : '', dataset: { room: name }, onclick: () => select('room', name) },
        el('span', {}, `# ${name}`),
        room?.unread ? el('span', { class: 'unread' }, room.unread) : el('span', { class: 'member-count', title: 'members' }, `${count}`),
      );
    }),
  );
  // online users
  const online = [...state.online.values()].sort((a, b) => (a.username ?? a.user_id).localeCompare(b.username ?? b.user_id));
  $('online').replaceChildren(
    ...online.map((u) =>
      el(
        'li',
        { dataset: { user: u.user_id }, title: u.user_id === state.me.userId ? 'you' : 'send a private message', onclick: () => u.user_id !== state.me.userId && select('dm', u.user_id) },
        el('span', { class: 'dot' }),
        `${u.username ?? u.user_id}${u.user_id === state.me.userId ? ' (you)' : ''}`,
      ),
    ),
  );
  // DMs
  $('dms').replaceChildren(
    ...[...state.dms].map(([id, dm]) =>
      el('li', { class: isActive('dm', id) ? 'active' : '', dataset: { dm: id }, onclick: () => select('dm', id) }, el('span', {}, `@ ${dm.username}`), dm.unread ? el('span', { class: 'unread' }, dm.unread) : ''),
    ),
  );
  // conversation
  const { kind, id } = state.active;
  let messages = [];
  if (kind === 'room') {
    const room = state.rooms.get(id);
    $('conversation-title').textContent = state.client ? `# ${id}` : 'Connect to start chatting';
  document.body.dataset.view = kind;
    messages = room ? [...room.messages.values()].sort((a, b) => a.seq - b.seq) : [];
    const typers = (room?.typing ?? []).map((u) => state.names.get(u) ?? u);
    $('typing').textContent = typers.length === 0 ? '' : `${typers.join(', ')} ${typers.length === 1 ? 'is' : 'are'} typing…`;
    const members = new Map();
    for (const m of room?.members.values() ?? []) members.set(m.user_id ?? m.connection_id, m.username ?? m.user_id ?? 'anonymous');
    const more = Math.max(0, (room?.sub?.members ?? 0) - (room?.members.size ?? 0)); // connections not listed
    $('members').replaceChildren(
      ...[...members].map(([uid, name]) => el('li', { dataset: { user: uid } }, el('span', { class: 'dot' }), name + (uid === state.me.userId ? ' (you)' : ''))),
      ...(more > 0 ? [el('li', { class: 'more' }, `+ ${more} more connection${more === 1 ? '' : 's'}`)] : []),
    );
  } else {
    const dm = dmFor(id);
    $('conversation-title').textContent = `@ ${dm.username} (private)`;
    messages = dm.messages;
    $('typing').textContent = '';
    $('members').replaceChildren(el('li', {}, dm.username), el('li', {}, `${state.me.username} (you)`));
  }
  const list = $('messages');
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 20;
  if (messages.length === 0) {
    list.replaceChildren(emptyState(kind, id));
    return;
  }
  list.replaceChildren(
    ...messages.map((m) =>
      el(
        'li',
        { class: `msg${m.senderId === state.me.userId ? ' mine' : ''}${m.replayed ? ' replayed' : ''}`, dataset: { key: m.key } },
        el('time', { datetime: m.time }, fmtTime(m.time)),
        el('span', { class: 'sender' }, m.sender),
        el('span', { class: 'text' }, m.text),
        m.replayed ? el('span', { class: 'tag' }, 'recovered') : '',
      ),
    ),
  );
  if (atBottom) list.scrollTop = list.scrollHeight;
}

/** What the conversation shows while it has no message. */
function emptyState(kind, id) {
  let title;
  let hint;
  if (!state.client) {
    title = 'Welcome to the Switchboard demo chat';
    hint = 'Pick a name and press Connect. Open this page in a second window to chat with yourself.';
  } else if (kind === 'dm') {
    title = 'No private messages yet';
    hint = 'Messages you send here reach only this user.';
  } else if (state.status !== 'connected') {
    title = `# ${id}`;
    hint = 'Connecting…';
  } else {
    title = `No messages in # ${id} yet`;
    hint = 'Say hello! Everyone in the room sees it, and it stays in the history.';
  }
  return el('li', { class: 'empty-state', id: 'empty-state' }, el('strong', {}, title), el('span', {}, hint));
}

// ---------------------------------------------------------------- wiring

const params = new URLSearchParams(location.search);
$('username').value = params.get('username') ?? localStorage.getItem('sb-chat-username') ?? '';
$('login').addEventListener('submit', (e) => {
  e.preventDefault();
  const username = $('username').value.trim();
  if (!username) return;
  localStorage.setItem('sb-chat-username', username);
  connect(username, $('token').value.trim());
});
$('disconnect').addEventListener('click', () => {
  state.client?.close();
  renderStatus('closed');
});
$('composer').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('message');
  const text = input.value.trim();
  input.value = '';
  void send(text);
});
$('message').addEventListener('input', () => setTyping($('message').value.length > 0));
$('add-room').addEventListener('submit', (e) => {
  e.preventDefault();
  const name = $('new-room').value.trim().replace(/\s+/g, '-');
  $('new-room').value = '';
  if (!name) return;
  joinRoom(name);
  select('room', name);
});
for (const name of DEFAULT_ROOMS) joinRoom(name);
renderStatus('disconnected');
