// The commune dashboard: plain JS, no build step. Everything comes from the appview's
// public query API (/xrpc/commune.appview.*); /events says when something changed, and
// a short poll catches what changes with time alone (a heartbeat ageing into yellow).
// Record content is user-written: it only ever reaches the page as text, never as HTML.
'use strict'

const POLL_MS = 3000
const view = { state: '', selected: location.hash.startsWith('#w=') ? decodeURIComponent(location.hash.slice(3)) : null, more: null }
let refreshing = null
let again = false

function h(tag, attrs, ...children) {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue
    if (k === 'class') el.className = v
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v)
    else el.setAttribute(k, v === true ? '' : String(v))
  }
  for (const c of children.flat()) if (c !== undefined && c !== null && c !== false) el.append(c instanceof Node ? c : String(c))
  return el
}

function short(did) {
  if (!did) return ''
  return did.length > 22 ? `${did.slice(0, 14)}…${did.slice(-6)}` : did
}

function rkeyOf(uri) {
  return uri.split('/').pop()
}

async function xrpc(method, params) {
  const qs = new URLSearchParams()
  for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== null && v !== '') qs.set(k, v)
  const res = await fetch(`/xrpc/commune.appview.${method}?${qs}`)
  const body = await res.json().catch(() => ({}))
  if (!res.ok) throw new Error(body.message || body.error || `HTTP ${res.status}`)
  return body
}

function cpu(m) {
  return (m / 1000).toFixed(m % 1000 ? 2 : 0)
}

function renderMatrix(meshlets) {
  const cells = meshlets.map((m) =>
    h(
      'div',
      { class: `cell health-${m.health}`, role: 'listitem', 'data-meshlet': m.did, 'data-health': m.health, title: m.did },
      h('div', {}, h('span', { class: 'health' }, m.health), ' ', h('span', { class: 'name' }, short(m.did))),
      h('div', { class: 'muted' }, m.owner ? `owner ${short(m.owner)}` : 'not linked'),
      m.total
        ? h('div', {}, `cpu ${cpu(m.allocatable.cpuMillis)}/${cpu(m.total.cpuMillis)} · mem ${m.allocatable.memoryMiB}/${m.total.memoryMiB} MiB`)
        : h('div', { class: 'muted' }, 'no heartbeat yet'),
      h('div', { 'data-running': m.running }, `${m.running} running`, m.paused ? `, ${m.paused} paused` : ''),
      h(
        'div',
        {},
        m.heartbeatAgeSeconds !== undefined ? h('span', { class: 'flag' }, `heartbeat ${m.heartbeatAgeSeconds}s ago / ${m.heartbeatSeconds}s`) : null,
        m.draining ? h('span', { class: 'flag warn', 'data-flag': 'draining' }, 'draining') : null,
        m.declining ? h('span', { class: 'flag warn', 'data-flag': 'declining' }, m.declining) : null,
        m.clusters.length ? h('span', { class: 'flag' }, m.clusters.join(', ')) : null,
      ),
    ),
  )
  document.getElementById('matrix').replaceChildren(...(cells.length ? cells : [h('p', { class: 'muted' }, 'no meshlet known yet')]))
}

function workloadItem(w) {
  const replicas = w.statuses.map((s) =>
    h('span', { class: 'chip', 'data-state': s.state, 'data-meshlet': s.meshlet, title: s.meshlet }, `${short(s.meshlet)} #${s.replica} ${s.state}`),
  )
  return h(
    'li',
    { tabindex: 0, 'data-workload': w.uri, 'data-state': w.state, onclick: () => select(w.uri), onkeydown: (e) => e.key === 'Enter' && select(w.uri) },
    h('div', {}, h('strong', {}, w.name || rkeyOf(w.uri)), ' ', h('span', { class: 'chip', 'data-state': w.state, 'data-role': 'state' }, w.state), h('span', { class: 'chip', 'data-state': w.phase }, `${w.phase} ${w.placed}/${w.replicas}`)),
    h('div', { class: 'muted' }, `${short(w.owner)} · ${w.image} · ${new Date(w.createdAt).toLocaleString()}`),
    replicas.length ? h('div', {}, replicas) : null,
    w.reason ? h('div', { class: 'reason' }, w.reason) : null,
  )
}

function renderWorkloads(list, append) {
  const ul = document.getElementById('workloads')
  const items = list.workloads.map(workloadItem)
  if (append) ul.append(...items)
  else ul.replaceChildren(...(items.length ? items : [h('li', { class: 'muted' }, 'no workloads')]))
  view.more = list.cursor || null
  document.getElementById('more').hidden = !view.more
}

function renderDetail(d) {
  const section = document.getElementById('detail')
  section.hidden = false
  section.setAttribute('data-workload', d.workload.uri)
  section.setAttribute('data-state', d.workload.state)
  const w = d.workload
  const p = d.placement
  document.getElementById('detail-summary').replaceChildren(
    h('p', {}, h('strong', {}, w.name || rkeyOf(w.uri)), ' ', h('span', { class: 'chip', 'data-state': w.state }, w.state), ' ', h('span', { class: 'muted' }, w.uri)),
    h('p', {}, `${p.phase}: ${p.placed}/${p.wanted} placed, round ${p.round}`, p.waitingFor.length ? ` · waiting for ${p.waitingFor.map(short).join(', ')}` : '', p.reason ? ` · ${p.reason}` : ''),
    h('p', { class: 'muted' }, `image ${w.image} · ${cpu(w.resources.cpuMillis)} cpu · ${w.resources.memoryMiB} MiB · owner ${short(w.owner)}`),
    h(
      'ul',
      {},
      p.selected.map((s) =>
        h('li', { 'data-selected': s.meshlet }, `${short(s.meshlet)}: ${s.replicas ? `${s.replicas} to run` : ''}${s.finished ? `${s.finished} finished` : ''} (round ${s.round}, ${s.via}${s.confirmed ? '' : ', waiting for answers above it'})`),
      ),
    ),
  )
  document.getElementById('timeline').replaceChildren(
    ...d.timeline.map((e) =>
      h(
        'li',
        { 'data-kind': e.kind },
        h('time', { datetime: e.at }, new Date(e.at).toLocaleTimeString()),
        h('strong', {}, e.kind),
        e.meshlet ? ` ${short(e.meshlet)}${e.replica !== undefined ? ` #${e.replica}` : ''}` : '',
        e.round !== undefined && !e.meshlet ? ` round ${e.round}` : '',
        e.detail ? h('span', { class: 'muted' }, ` — ${e.detail}`) : '',
      ),
    ),
  )
  document.getElementById('whynot').replaceChildren(
    ...(p.whyNot.length ? p.whyNot.map((x) => h('li', { 'data-meshlet': x.meshlet }, `${short(x.meshlet)}: ${x.reason}`)) : [h('li', { class: 'muted' }, 'none')]),
  )
}

function ledgerRange() {
  const from = document.getElementById('ledger-from').value
  const to = document.getElementById('ledger-to').value
  const period = document.getElementById('ledger-period').value
  return { from: `${from}T00:00:00.000Z`, to: `${to}T00:00:00.000Z`, period }
}

function renderLedger(ledger) {
  const num = (v, d) => h('td', { class: 'num' }, v.toFixed(d))
  const rows = ledger.rows.map((r) =>
    h(
      'tr',
      { 'data-owner': r.owner },
      h('td', {}, `${r.periodStart.slice(0, 10)} – ${r.periodEnd.slice(0, 10)}`),
      h('td', { title: r.owner }, short(r.owner)),
      num(r.servedCpuMillis / 1000, 3),
      num(r.usedCpuMillis / 1000, 3),
      num(r.balanceCpuMillis / 1000, 3),
      num(r.servedMemoryMiBSeconds / 1024 / 3600, 6),
      num(r.usedMemoryMiBSeconds / 1024 / 3600, 6),
      h('td', { class: 'num' }, `${r.servedReplicas} / ${r.usedReplicas}`),
    ),
  )
  document.querySelector('#ledger tbody').replaceChildren(...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 8, class: 'muted' }, 'nothing served or used in this range'))]))
  const q = ledgerRange()
  document.getElementById('csv').href = `/ledger.csv?${new URLSearchParams(q)}`
}

async function refresh() {
  if (refreshing) {
    again = true
    return refreshing
  }
  refreshing = (async () => {
    try {
      const [meshlets, workloads, ledger, detail] = await Promise.all([
        xrpc('listMeshlets'),
        xrpc('listWorkloads', { state: view.state, limit: 50 }),
        xrpc('getLedger', ledgerRange()),
        view.selected ? xrpc('getWorkload', { uri: view.selected }).catch(() => null) : null,
      ])
      renderMatrix(meshlets.meshlets)
      renderWorkloads(workloads, false)
      renderLedger(ledger)
      if (detail) renderDetail(detail)
      else document.getElementById('detail').hidden = true
      const queued = workloads.workloads.filter((w) => w.state === 'queued').length
      document.getElementById('queue-summary').textContent = queued ? `${queued} queued` : ''
      document.getElementById('updated').textContent = `updated ${new Date(meshlets.now).toLocaleTimeString()}`
      document.body.setAttribute('data-refreshed', String(Date.now()))
    } catch (err) {
      document.getElementById('updated').textContent = `update failed: ${err.message}`
    } finally {
      refreshing = null
      if (again) {
        again = false
        void refresh()
      }
    }
  })()
  return refreshing
}

function select(uri) {
  view.selected = uri
  history.replaceState(null, '', uri ? `#w=${encodeURIComponent(uri)}` : '#')
  void refresh()
  if (uri) document.getElementById('detail').scrollIntoView({ behavior: 'smooth' })
}

function live() {
  const el = document.getElementById('live')
  const events = new EventSource('/events')
  events.addEventListener('change', () => {
    el.textContent = 'live'
    el.dataset.live = 'live'
    void refresh()
  })
  events.onerror = () => {
    el.textContent = 'reconnecting…'
    el.dataset.live = 'offline'
  }
}

function init() {
  const day = 86_400_000
  const iso = (t) => new Date(t).toISOString().slice(0, 10)
  document.getElementById('ledger-from').value = iso(Date.now() - 30 * day)
  document.getElementById('ledger-to').value = iso(Date.now() + day)
  document.getElementById('state-filter').addEventListener('change', (e) => {
    view.state = e.target.value
    void refresh()
  })
  document.getElementById('ledger-form').addEventListener('change', () => void refresh())
  document.getElementById('ledger-form').addEventListener('submit', (e) => e.preventDefault())
  document.getElementById('close-detail').addEventListener('click', () => select(null))
  document.getElementById('more').addEventListener('click', async () => {
    if (!view.more) return
    renderWorkloads(await xrpc('listWorkloads', { state: view.state, limit: 50, cursor: view.more }), true)
  })
  live()
  void refresh()
  setInterval(() => void refresh(), POLL_MS)
}

init()
