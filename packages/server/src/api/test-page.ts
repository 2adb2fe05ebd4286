/** Minimal HTML test client (seed 004's bar): connect, join a channel, send, see every frame. */
export const TEST_PAGE_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Switchboard test client</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5rem;max-width:900px}
input,button{font:inherit;padding:.3rem .5rem;margin:.2rem}
#status{font-weight:bold}#status.on{color:#087f23}#status.off{color:#b00020}
#log{border:1px solid #ccc;height:360px;overflow:auto;padding:.5rem;font:12px ui-monospace,monospace;white-space:pre-wrap}
.out{color:#1a4fa0}.err{color:#b00020}
</style></head><body>
<h1>Switchboard test client</h1>
<p>Status: <span id="status" class="off">disconnected</span> <span id="conn"></span></p>
<div>
<input id="username" placeholder="username" value="guest">
<input id="token" placeholder="token (optional)" size="30">
<button id="connect">Connect</button><button id="disconnect">Disconnect</button>
</div>
<div><input id="channel" value="general"><button id="join">Join</button><button id="leave">Leave</button></div>
<div><input id="text" placeholder="message" size="50"><button id="send">Send</button></div>
<div><input id="raw" placeholder='raw JSON, e.g. {"type":"online_users"}' size="60"><button id="sendraw">Send raw</button></div>
<div id="log"></div>
<script>
let ws = null;
const $ = (id) => document.getElementById(id);
function log(text, cls) { const d = document.createElement('div'); if (cls) d.className = cls; d.textContent = text; $('log').appendChild(d); $('log').scrollTop = 1e9; }
function send(obj) { if (!ws || ws.readyState !== 1) return log('not connected', 'err'); const t = JSON.stringify(obj); ws.send(t); log('> ' + t, 'out'); }
$('connect').onclick = () => {
  const q = new URLSearchParams({ username: $('username').value });
  if ($('token').value) q.set('token', $('token').value);
  ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws?' + q);
  ws.onopen = () => { $('status').textContent = 'connected'; $('status').className = 'on'; };
  ws.onclose = (e) => { $('status').textContent = 'disconnected (' + e.code + (e.reason ? ' ' + e.reason : '') + ')'; $('status').className = 'off'; };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === 'ping') { ws.send(JSON.stringify({ type: 'pong' })); return; }
    if (m.type === 'connect') $('conn').textContent = 'id ' + m.data.connection_id;
    log('< ' + e.data, m.type === 'error' ? 'err' : '');
  };
};
$('disconnect').onclick = () => ws && ws.close(1000);
$('join').onclick = () => send({ type: 'join_channel', data: { channel: $('channel').value } });
$('leave').onclick = () => send({ type: 'leave_channel', data: { channel: $('channel').value } });
$('send').onclick = () => { send({ type: 'message', data: { channel: $('channel').value, content: $('text').value } }); $('text').value = ''; };
$('sendraw').onclick = () => { try { send(JSON.parse($('raw').value)); } catch (e) { log('bad JSON: ' + e.message, 'err'); } };
</script></body></html>`;
