// Every write made on the phone waits here (localStorage, per user) until its service has it: visit
// records and the registry's changes alike, so a village without signal loses nothing. Each is made
// safe to send twice: records and registrations carry the client_id made when they were written (the
// API answers the one it already has); an absence or agreement sent again is refused as already
// there (409), which means it arrived; an archive change carries the version the user saw (If-Match),
// and a change made meanwhile by someone else is shown to the user, never overwritten.
import { reactive } from 'vue'
import { ApiError, call, session } from './api.js'
import { flat } from './archive.js'

export const outbox = reactive({ items: [], sending: false })

// 409s that mean "this is already on the server": the lost answer of an earlier send.
const ALREADY_THERE = new Set(['absence_overlaps', 'agreement_in_force'])

// crypto.randomUUID exists only in secure contexts; a village server may be reached over plain http.
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('')
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`
}

const key = () => `shouhu.outbox.${session.claims?.sub}`

function save() {
  localStorage.setItem(key(), JSON.stringify(outbox.items))
}

// A queue saved by the first version of the app holds visit records only (no service or path).
const RECORD = { service: 'visits', method: 'POST', path: '/api/v1/records', headers: {} }

export function loadOutbox() {
  outbox.items = JSON.parse(localStorage.getItem(key()) || '[]')
    .map((item) => (item.path ? item : { ...RECORD, ...item, what: item.body.kind, on: item.body.visited_on }))
}

// request: {service, path, method?, body, headers?, keyed? (the body carries the client_id), seen? (the
// archive's fields as the user saw them, for a conflict)}; label and what (an i18n key) name it in the list.
export function enqueue(request, label, what, on = '') {
  const client_id = uuid()
  const body = request.keyed ? { ...request.body, client_id } : request.body
  const item = {
    method: 'POST', headers: {}, ...request, body, client_id, label, what, on,
    state: 'queued', error: null, current: null, made_at: Date.now(),
  }
  outbox.items.push(item)
  save()
  flush()
  return item
}

export function enqueueRecord(body, label) {
  return enqueue({ ...RECORD, body, keyed: true }, label, body.kind, body.visited_on)
}

async function send(item) {
  try {
    await call(item.service, item.path, { method: item.method, body: item.body, headers: item.headers })
    item.state = 'sent'
  } catch (err) {
    if (!(err instanceof ApiError) || err.status >= 500) throw err  // no signal (or the server is down): later
    const code = err.body?.detail?.code
    if (err.status === 409 && ALREADY_THERE.has(code)) {
      item.state = 'sent'
    } else if (err.status === 409 && code === 'version_conflict') {
      const current = await call(item.service, item.path)
      const now = flat(current)
      // Our own change whose answer was lost is on the server already; anything else is the user's choice.
      const ours = Object.entries(flat(item.body)).every(([field, value]) => now[field] === value)
      item.state = ours ? 'sent' : 'conflict'
      item.current = ours ? null : current
    } else {
      item.state = 'failed'  // refused: shown to the user with the reason, never dropped silently
      item.error = err.body
    }
  }
}

export async function flush() {
  if (outbox.sending || !session.token) return
  outbox.sending = true
  try {
    for (const item of outbox.items.filter((i) => i.state === 'queued')) {
      try {
        await send(item)
      } catch {
        break
      }
      save()
    }
    // What was sent stays listed for this session; the stored queue keeps only what is not yet sent.
    localStorage.setItem(key(), JSON.stringify(outbox.items.filter((i) => i.state !== 'sent')))
  } finally {
    outbox.sending = false
  }
}

export function retry(item) {
  item.state = 'queued'
  item.error = null
  save()
  flush()
}

// The user keeps her change over the archive as it is now: sent again against its current version.
export function keepMine(item) {
  item.headers = { ...item.headers, 'If-Match': String(item.current.version) }
  item.seen = flat(item.current)
  item.current = null
  retry(item)
}

export function discard(item) {
  outbox.items.splice(outbox.items.indexOf(item), 1)
  save()
}

window.addEventListener('online', flush)
setInterval(flush, 5000)  // 'online' is not fired everywhere a weak signal comes back
