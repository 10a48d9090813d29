// The services' APIs: the visits API on this page's origin, the registry and reporting through CORS.
import { reactive } from 'vue'

const PORTS = { registry: 8001, visits: 8002, reporting: 8004 }

export const session = reactive({ token: '', claims: null, apis: {} })

export class ApiError extends Error {
  constructor(status, body) {
    super(`HTTP ${status}`)
    this.status = status
    this.body = body
  }
}

function claimsOf(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')
    const claims = JSON.parse(decodeURIComponent(escape(atob(part))))
    return claims.role && claims.sub && claims.exp * 1000 > Date.now() ? claims : null
  } catch {
    return null
  }
}

// A token from the link (?token=) or pasted; the role and region shown come from its claims (the
// services check it again on every call).
export function signIn(token) {
  const claims = claimsOf(token.trim())
  if (!claims) return false
  session.token = token.trim()
  session.claims = claims
  localStorage.setItem('shouhu.token', session.token)
  return true
}

export function signOut() {
  session.token = ''
  session.claims = null
  localStorage.removeItem('shouhu.token')
}

export async function start() {
  const fromLink = new URLSearchParams(location.search).get('token')
  if (fromLink) {
    history.replaceState(null, '', location.pathname)  // keep the token out of the address bar and history
  }
  signIn(fromLink || localStorage.getItem('shouhu.token') || '')
  // The APIs' addresses, kept for opening the app with no signal: the first page load fetches
  // config.json before the service worker controls it, so the worker may not have it to serve.
  try {
    const res = await fetch('config.json')
    if (res.ok) {
      session.apis = (await res.json()).apis || {}
      localStorage.setItem('shouhu.apis', JSON.stringify(session.apis))
    }
  } catch {
    session.apis = JSON.parse(localStorage.getItem('shouhu.apis') || '{}')
  }
}

function base(service) {
  if (service === 'visits') return location.origin
  return session.apis[service] || `${location.protocol}//${location.hostname}:${PORTS[service]}`
}

export async function call(service, path, { method = 'GET', body, headers = {} } = {}) {
  const res = await fetch(base(service) + path, {
    method,
    headers: { Authorization: `Bearer ${session.token}`, 'Content-Type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const data = res.status === 204 ? null : await res.json().catch(() => null)
  if (!res.ok) throw new ApiError(res.status, data)
  return data
}

// A list the user may see, kept (per user) for when the signal drops: the answer and whether it is
// the saved copy.
export async function cached(service, path) {
  const key = `shouhu.cache.${session.claims.sub}.${service}${path}`
  try {
    const data = await call(service, path)
    localStorage.setItem(key, JSON.stringify({ at: Date.now(), data }))
    return { data, offline: false }
  } catch (err) {
    const hit = !(err instanceof ApiError) && localStorage.getItem(key)
    if (!hit) throw err
    return { ...JSON.parse(hit), offline: true }
  }
}

export function today() {
  const d = new Date()
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`
}
