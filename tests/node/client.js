// node-quickbooks, a real client library, pointed at a base URL as an app would point it
// at qbproxy (README "Pointing an app at it"): runs a list of library calls in order and
// prints what each returned, with the HTTP exchanges it made, as one JSON document.
//
//   QBO_ACCESS_TOKEN=... node client.js http://127.0.0.1:8080 <realm> < calls.json
//
// calls.json: [["findCustomers", {"DisplayName": "Acme"}], ["getCustomer", "1"], ...]:
// a method of QuickBooks and its arguments (the callback is added here). {"$date": iso}
// becomes a JavaScript Date, as an app would pass one. Exit status 0 whenever every call
// ran; a call the library reported as failed is printed with "ok": false.
'use strict'

const path = require('path')
const axios = require('axios')
const QuickBooks = require('node-quickbooks')

// The exchanges are recorded on the axios module node-quickbooks itself requires; a
// second copy under node-quickbooks/node_modules would see none of them.
const libraryAxios = require.resolve('axios', { paths: [path.dirname(require.resolve('node-quickbooks'))] })
if (libraryAxios !== require.resolve('axios')) {
  throw new Error('node-quickbooks uses its own axios copy at ' + libraryAxios)
}
// The target is on loopback: an http_proxy in the environment must not reroute it.
axios.defaults.proxy = false

let exchanges = []
function record (response) {
  const config = response.config
  exchanges.push({
    method: config.method.toUpperCase(),
    url: axios.getUri(config),
    status: response.status,
    xCache: response.headers['x-cache'] || null,
    contentType: response.headers['content-type'] || null,
    intuitTid: response.headers.intuit_tid || null
  })
}
axios.interceptors.response.use(
  (response) => { record(response); return response },
  (error) => { if (error.response) record(error.response); return Promise.reject(error) }
)

function revive (value) {
  if (Array.isArray(value)) return value.map(revive)
  if (value !== null && typeof value === 'object') {
    if (Object.keys(value).length === 1 && typeof value.$date === 'string') return new Date(value.$date)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, revive(v)]))
  }
  return value
}

function describe (err) {
  // node-quickbooks hands back a Fault body, or axios' error (its response, if any).
  if (err && err.isAxiosError) {
    return { message: err.message, status: err.response ? err.response.status : null, body: err.response ? err.response.data : null }
  }
  return err
}

function call (qbo, method, args) {
  if (typeof qbo[method] !== 'function') throw new Error('node-quickbooks has no method ' + method)
  return new Promise((resolve) => {
    qbo[method](...args, (err, data) => resolve(err ? { ok: false, error: describe(err) } : { ok: true, data }))
  })
}

async function main () {
  const [base, realm] = process.argv.slice(2)
  const token = process.env.QBO_ACCESS_TOKEN
  if (!base || !realm || !token) {
    throw new Error('usage: QBO_ACCESS_TOKEN=... node client.js BASE_URL REALM < calls.json')
  }
  const calls = JSON.parse(require('fs').readFileSync(0, 'utf8'))
  const minorversion = process.env.QBO_MINOR_VERSION ? Number(process.env.QBO_MINOR_VERSION) : null
  const qbo = new QuickBooks('client-id', 'client-secret', token, false, realm,
    false /* useSandbox */, false /* debug */, minorversion, '2.0', 'refresh-token')
  qbo.endpoint = base.replace(/\/+$/, '') + '/v3/company/'

  const results = []
  for (const [method, ...args] of calls) {
    exchanges = []
    const outcome = await call(qbo, method, revive(args))
    results.push({ call: method, ...outcome, http: exchanges })
  }
  process.stdout.write(JSON.stringify({ library: require('node-quickbooks/package.json').version, results }))
}

main().catch((err) => {
  process.stderr.write((err && err.stack) || String(err))
  process.exit(2)
})
