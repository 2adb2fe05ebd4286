// Switchboard admin dashboard. Talks to /admin/api/* with the admin token (Authorization: Bearer), kept in
// sessionStorage for this tab only. Nodes and figures come from every node's registry report (this node's are
// live); plots are drawn with uPlot (global `uPlot`, served from the installed uplot package).
import { $, el } from './dom.js';

const WINDOW_S = 600; // plots show the last 10 minutes
const POLL_MS = 2000;
const CHANNELS_POLL_MS = 5000;
const COLORS = ['#2557d6', '#d92d20', '#079455', '#dc6803', '#7a5af8', '#0e9384', '#c11574', '#475467'];

const state = {
  token: sessionStorage.getItem('sb-admin-token') || '',
  self: null,
  nodes: [],
  series: new Map(), // nodeId -> Map<second, [connections, in/s, out/s]>
  since: 0, // newest sample of this node already received
  plots: { connections: null, messages: null },
  plotNodes: '',
  channelsQ: '',
  selectedChannel: null,
  timers: [],
};

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = body?.error?.code;
  }
}

async function api(path, init = {}) {
  const res = await fetch(`/admin/api/${path}`, {
    ...init,
    headers: { authorization: `Bearer ${state.token}`, ...(init.body ? { 'content-type': 'application/json' } : {}), ...init.headers },
  });
  const body = await res.json().catch(() => null);
  if (!res.ok) {
    if (res.status === 401) signOut('The admin token was refused.');
    throw new ApiError(res.status, body);
  }
  return body;
}

// ---------------------------------------------------------------- sign in / out

function showLogin(message) {
  $('dashboard').hidden = true;
  $('signout').hidden = true;
  $('login').hidden = false;
  $('login-error').hidden = !message;
  $('login-error').textContent = message || '';
  $('token').focus();
}

function signOut(message) {
  for (const t of state.timers) clearInterval(t);
  state.timers = [];
  state.token = '';
  sessionStorage.removeItem('sb-admin-token');
  $('summary').replaceChildren();
  showLogin(message);
}

async function signIn(token) {
  state.token = token;
  try {
    await refreshOverview();
  } catch (err) {
    if (err.status !== 401) showLogin(`Could not load the dashboard: ${err.message}`);
    return;
  }
  sessionStorage.setItem('sb-admin-token', token);
  $('login').hidden = true;
  $('dashboard').hidden = false;
  $('signout').hidden = false;
  buildPlots();
  void refreshChannels();
  void search('');
  state.timers.push(setInterval(() => refreshOverview().catch(reportPollError), POLL_MS));
  state.timers.push(setInterval(() => refreshChannels().catch(reportPollError), CHANNELS_POLL_MS));
}

function reportPollError(err) {
  if (err.status === 401) return;
  $('nodes-note').textContent = `(last refresh failed: ${err.message})`;
}

// ---------------------------------------------------------------- nodes and plots

const fmt = {
  int: (n) => (n ?? 0).toLocaleString('en-US'),
  rate: (n) => (n == null ? '–' : n >= 100 ? Math.round(n).toLocaleString('en-US') : (Math.round(n * 10) / 10).toString()),
  mb: (b) => `${Math.round((b ?? 0) / 1048576)} MB`,
  pct: (c) => `${Math.round((c ?? 0) * 100)} %`,
  age: (ms) => (ms < 1500 ? 'live' : ms < 90_000 ? `${Math.round(ms / 1000)} s ago` : `${Math.round(ms / 60000)} min ago`),
  time: (t) => new Date(t).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }),
};

async function refreshOverview() {
  const o = await api(`overview?since=${state.since}`);
  state.self = o.node_id;
  state.nodes = o.nodes;
  const cutoff = Math.floor(o.time / 1000) - WINDOW_S;
  for (const n of o.nodes) {
    let s = state.series.get(n.nodeId);
    if (!s) state.series.set(n.nodeId, (s = new Map()));
    for (const [t, conns, rin, rout] of n.details?.series ?? []) s.set(Math.floor(t / 1000), [conns, rin, rout]);
    if (n.nodeId === o.node_id) {
      const last = n.details?.series?.at(-1);
      if (last) state.since = last[0];
    }
    for (const sec of s.keys()) if (sec < cutoff) s.delete(sec);
  }
  for (const id of [...state.series.keys()]) if (!o.nodes.some((n) => n.nodeId === id)) state.series.delete(id);
  renderSummary(o);
  renderNodes(o);
  renderErrors(o.errors);
  updatePlots();
  $('nodes-note').textContent = `(${o.nodes.length} node${o.nodes.length === 1 ? '' : 's'}; served by ${o.node_id}; others report every few seconds)`;
}

function latest(n) {
  const s = n.details?.series;
  return s && s.length ? s[s.length - 1] : null;
}

function renderSummary(o) {
  const total = (f) => o.nodes.reduce((sum, n) => sum + (f(n) ?? 0), 0);
  const down = o.nodes.filter((n) => n.details && !n.details.brokerUp).length;
  $('summary').replaceChildren(
    el('span', {}, el('b', {}, fmt.int(o.nodes.length)), ' nodes'),
    el('span', {}, el('b', { id: 'total-connections' }, fmt.int(total((n) => n.connections))), ' connections'),
    el('span', {}, el('b', {}, fmt.rate(total((n) => latest(n)?.[2]))), ' received/s'),
    el('span', {}, el('b', {}, fmt.rate(total((n) => latest(n)?.[3]))), ' delivered/s'),
    el('span', {}, down === 0 ? el('span', { class: 'badge' }, 'broker up') : el('span', { class: 'badge bad' }, `broker down on ${down}`)),
  );
}

function renderNodes(o) {
  const rows = o.nodes.map((n) => {
    const d = n.details;
    const l = latest(n);
    const age = n.nodeId === o.node_id ? 0 : o.time - n.updatedAt;
    return el(
      'tr',
      { dataset: { node: n.nodeId } },
      el('td', {}, n.nodeId, n.nodeId === o.node_id ? el('small', {}, ' (this node)') : ''),
      el('td', {}, d?.version ?? '–'),
      el('td', { class: 'num' }, fmt.int(n.connections)),
      el('td', { class: 'num' }, fmt.pct(n.cpu)),
      el('td', { class: 'num' }, fmt.mb(n.memoryRss)),
      el('td', { class: 'num' }, d ? fmt.int(d.channels) : '–'),
      el('td', { class: 'num' }, d ? fmt.int(d.users) : '–'),
      el('td', { class: 'num' }, fmt.rate(l?.[2])),
      el('td', { class: 'num' }, fmt.rate(l?.[3])),
      el('td', {}, !d ? '–' : d.brokerUp ? el('span', { class: 'badge' }, `${d.broker} up`) : el('span', { class: 'badge bad' }, `${d.broker} down`)),
      el('td', {}, n.draining ? el('span', { class: 'badge warn' }, 'draining') : 'serving'),
      el('td', {}, fmt.age(age)),
    );
  });
  $('nodes').tBodies[0].replaceChildren(...rows);
}

function colorOf(i) {
  return COLORS[i % COLORS.length];
}

function plotSize(id) {
  const box = $(id);
  return { width: Math.max(280, box.clientWidth), height: 220 };
}

function buildPlots() {
  const ids = [...state.series.keys()].sort();
  state.plotNodes = ids.join('|');
  for (const p of Object.values(state.plots)) p?.destroy();
  if (typeof uPlot !== 'function') {
    for (const id of ['plot-connections', 'plot-messages']) $(id).replaceChildren(el('p', { class: 'empty' }, 'uPlot is not available (uplot package missing)'));
    return;
  }
  const axes = [{}, { size: 56 }];
  const scales = { x: { time: true } };
  state.plots.connections = new uPlot(
    { ...plotSize('plot-connections'), scales, axes, series: [{}, ...ids.map((id, i) => ({ label: id, stroke: colorOf(i), width: 2, spanGaps: true }))] },
    plotData(ids, (v) => v[0]),
    $('plot-connections'),
  );
  const series = [{}];
  ids.forEach((id, i) => {
    series.push({ label: `${id} delivered`, stroke: colorOf(i), width: 2, spanGaps: true });
    series.push({ label: `${id} received`, stroke: colorOf(i), width: 1, dash: [6, 4], spanGaps: true });
  });
  state.plots.messages = new uPlot({ ...plotSize('plot-messages'), scales, axes, series }, messageData(ids), $('plot-messages'));
  markPoints();
}

/** The number of seconds plotted, on the plot's element (`data-points`): what the page shows, for tests. */
function markPoints() {
  $('plot-connections').dataset.points = String(state.plots.connections?.data[0].length ?? 0);
}

/** uPlot data: x = every second seen in the window, one array per node (null where a node has no sample). */
function plotData(ids, pick) {
  const xs = new Set();
  for (const id of ids) for (const sec of state.series.get(id)?.keys() ?? []) xs.add(sec);
  const x = [...xs].sort((a, b) => a - b);
  return [x, ...ids.map((id) => x.map((sec) => { const v = state.series.get(id)?.get(sec); return v ? pick(v) : null; }))];
}

function messageData(ids) {
  const x = plotData(ids, (v) => v[0])[0];
  const out = [x];
  for (const id of ids) {
    out.push(alignTo(x, id, 2)); // delivered/s
    out.push(alignTo(x, id, 1)); // received/s
  }
  return out;
}

function alignTo(x, id, index) {
  const s = state.series.get(id);
  return x.map((sec) => { const v = s?.get(sec); return v ? v[index] : null; });
}

function updatePlots() {
  const ids = [...state.series.keys()].sort();
  if (ids.join('|') !== state.plotNodes || !state.plots.connections) {
    if (!$('dashboard').hidden) buildPlots();
    return;
  }
  state.plots.connections.setData(plotData(ids, (v) => v[0]));
  state.plots.messages.setData(messageData(ids));
  markPoints();
}

window.addEventListener('resize', () => {
  if (state.plots.connections) state.plots.connections.setSize(plotSize('plot-connections'));
  if (state.plots.messages) state.plots.messages.setSize(plotSize('plot-messages'));
});

// ---------------------------------------------------------------- errors

function renderErrors(errors) {
  const body = $('errors').tBodies[0];
  if (!errors.length) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: '5', class: 'empty' }, 'No errors recorded')));
    return;
  }
  body.replaceChildren(
    ...errors.map((e) =>
      el('tr', { class: e.level === 'error' ? 'error' : '' }, el('td', {}, fmt.time(e.time)), el('td', {}, e.node), el('td', {}, e.kind === 'log' ? `log ${e.level}` : 'error frame'), el('td', {}, e.code ?? ''), el('td', { class: 'msg' }, e.message)),
    ),
  );
}

// ---------------------------------------------------------------- channels and presence

async function refreshChannels() {
  const { channels } = await api(`channels?q=${encodeURIComponent(state.channelsQ)}`);
  const body = $('channels').tBodies[0];
  if (!channels.length) {
    body.replaceChildren(el('tr', {}, el('td', { colspan: '3', class: 'empty' }, state.channelsQ ? 'No channel matches' : 'No channel has members')));
    return;
  }
  body.replaceChildren(
    ...channels.map((c) =>
      el(
        'tr',
        { class: `clickable${c.channel === state.selectedChannel ? ' selected' : ''}`, dataset: { channel: c.channel }, onclick: () => void showPresence(c.channel) },
        el('td', {}, c.channel),
        el('td', { class: 'num' }, fmt.int(c.members)),
        el('td', {}, Object.entries(c.nodes).map(([n, k]) => `${n}: ${k}`).join(', ')),
      ),
    ),
  );
  if (state.selectedChannel) void showPresence(state.selectedChannel, true);
}

async function showPresence(channel, quiet = false) {
  state.selectedChannel = channel;
  for (const tr of $('channels').tBodies[0].rows) tr.classList.toggle('selected', tr.dataset.channel === channel);
  $('presence').hidden = false;
  $('presence-channel').textContent = channel;
  let members;
  try {
    ({ members } = await api(`channels/${encodeURIComponent(channel)}/presence`));
  } catch (err) {
    if (!quiet) $('presence-table').tBodies[0].replaceChildren(el('tr', {}, el('td', { colspan: '4', class: 'error' }, err.message)));
    return;
  }
  $('presence-table').tBodies[0].replaceChildren(
    ...(members.length
      ? members.map((m) =>
          el(
            'tr',
            { dataset: { connection: m.connection_id } },
            el('td', {}, m.user_id ?? 'anonymous'),
            el('td', {}, m.username ?? ''),
            el('td', {}, m.connection_id),
            el('td', {}, el('button', { class: 'danger', type: 'button', onclick: () => void disconnect('connections', m.connection_id) }, 'Disconnect')),
          ),
        )
      : [el('tr', {}, el('td', { colspan: '4', class: 'empty' }, 'No members (presence may be off for this namespace)'))]),
  );
}

// ---------------------------------------------------------------- search and disconnect

async function search(q) {
  let r;
  try {
    r = await api(`search?q=${encodeURIComponent(q)}`);
  } catch (err) {
    $('search-connections').tBodies[0].replaceChildren(el('tr', {}, el('td', { colspan: '7', class: 'error' }, err.message)));
    return;
  }
  $('search-connections').tBodies[0].replaceChildren(
    ...(r.connections.length
      ? r.connections.map((c) =>
          el(
            'tr',
            { dataset: { connection: c.connection_id } },
            el('td', {}, c.connection_id),
            el('td', {}, c.username && c.username !== c.user_id ? `${c.user_id ?? 'anonymous'} (${c.username})` : c.user_id ?? 'anonymous'),
            el('td', {}, c.transport),
            el('td', {}, c.remote_address),
            el('td', {}, c.channels.join(', ')),
            el('td', {}, fmt.time(c.connected_at)),
            el('td', {}, el('button', { class: 'danger', type: 'button', onclick: () => void disconnect('connections', c.connection_id) }, 'Disconnect')),
          ),
        )
      : [el('tr', {}, el('td', { colspan: '7', class: 'empty' }, 'No connection matches on this node'))]),
  );
  $('search-users').tBodies[0].replaceChildren(
    ...(r.users.length
      ? r.users.map((u) =>
          el(
            'tr',
            { dataset: { user: u.user_id } },
            el('td', {}, u.user_id),
            el('td', {}, u.username ?? ''),
            el('td', {}, el('button', { class: 'danger', type: 'button', onclick: () => void disconnect('users', u.user_id) }, 'Disconnect user')),
          ),
        )
      : [el('tr', {}, el('td', { colspan: '3', class: 'empty' }, 'No online user matches'))]),
  );
}

async function disconnect(kind, id) {
  if (!confirm(`Disconnect ${kind === 'users' ? 'every connection of user' : 'connection'} ${id}?`)) return;
  try {
    await api(`${kind}/${encodeURIComponent(id)}/disconnect`, { method: 'POST', body: '{}' });
  } catch (err) {
    alert(`Disconnect failed: ${err.message}`);
    return;
  }
  setTimeout(() => {
    void search($('search-q').value.trim());
    if (state.selectedChannel) void showPresence(state.selectedChannel, true);
  }, 300);
}

// ---------------------------------------------------------------- publish

async function publish(channel, text) {
  const out = $('publish-result');
  let data;
  try {
    data = JSON.parse(text);
  } catch (err) {
    out.className = 'error';
    out.textContent = `Not JSON: ${err.message}`;
    return;
  }
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    out.className = 'error';
    out.textContent = 'Data must be a JSON object';
    return;
  }
  try {
    const r = await api('publish', { method: 'POST', body: JSON.stringify({ channel, data }) });
    out.className = 'ok';
    out.textContent = `Published to ${r.channel}: offset ${r.offset}, epoch ${r.epoch}`;
  } catch (err) {
    out.className = 'error';
    out.textContent = `Not published: ${err.message}`;
  }
}

// ---------------------------------------------------------------- wiring

$('login-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void signIn($('token').value.trim());
});
$('signout').addEventListener('click', () => signOut());
$('channel-filter').addEventListener('submit', (e) => e.preventDefault());
$('channel-q').addEventListener('input', () => {
  state.channelsQ = $('channel-q').value.trim();
  void refreshChannels().catch(reportPollError);
});
$('search-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void search($('search-q').value.trim());
});
$('publish-form').addEventListener('submit', (e) => {
  e.preventDefault();
  void publish($('publish-channel').value.trim(), $('publish-data').value);
});

if (state.token) void signIn(state.token);
else showLogin();
