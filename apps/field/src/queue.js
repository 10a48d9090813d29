// Visit records wait here (localStorage, per user) until the visits API has them. Each carries the
// client_id made when it was written, so sending it again after a lost answer never makes a second
// record: the API answers the one it already has.
import { reactive } from 'vue'
import { ApiError, call, session } from './api.js'

export const outbox = reactive({ items: [], sending: false })

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

export function loadOutbox() {
  outbox.items = JSON.parse(localStorage.getItem(key()) || '[]')
}

export function enqueueRecord(body, label) {
  const item = { client_id: uuid(), body, label, state: 'queued', error: null, made_at: Date.now() }
  outbox.items.push(item)
  save()
  flush()
  return item
}

export async function flush() {
  if (outbox.sending || !session.token) return
  outbox.sending = true
  try {
    for (const item of outbox.items.filter((i) => i.state === 'queued')) {
      try {
        await call('visits', '/api/v1/records', { method: 'POST', body: { ...item.body, client_id: item.client_id } })
        item.state = 'sent'
      } catch (err) {
        if (!(err instanceof ApiError) || err.status >= 500) break  // no signal (or the server is down): later
        item.state = 'failed'  // refused: shown to the user with the reason, never dropped silently
        item.error = err.body
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

export function discard(item) {
  outbox.items.splice(outbox.items.indexOf(item), 1)
  save()
}

window.addEventListener('online', flush)
setInterval(flush, 5000)  // 'online' is not fired everywhere a weak signal comes back
