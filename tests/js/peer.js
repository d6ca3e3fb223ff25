#!/usr/bin/env node
'use strict'

// A JS Hypercore peer for Fritter's replication tests (hypercore@11.37.1, compat cores),
// over plain TCP: `core.replicate(isInitiator)` returns the raw side of an
// @hyperswarm/secret-stream (Noise XX, the stream Hyperswarm uses), piped to the socket.
//
//   node peer.js reader --key HEX --connect HOST:PORT --expect N [--value-prefix entry]
//       Replicates the core with that key, waits until it has N entries, reads and checks them,
//       prints {"event":"synced",...}; then keeps downloading live and prints
//       {"event":"length",...} as the core grows.
//   node peer.js writer --seed HEX32 --entries N [--listen PORT]
//       Creates a compat core from the seed, appends N entries, listens, prints
//       {"event":"ready","key":...,"port":...}. Each stdin line "append K" appends K entries.
//
// Every output line is one JSON object. Entry i is the same bytes Fritter's tests use:
// `entry ${i} ` padded with a letter to 20 + (i % 7) * 40 bytes, or to --size bytes if given
// (the benchmark uses 300).

const net = require('net')
const os = require('os')
const fs = require('fs')
const path = require('path')
const readline = require('readline')

const Hypercore = require('hypercore')
const crypto = require('hypercore-crypto')
const { pipeline } = require('stream')

const EXPECTED_VERSION = '11.37.1'
const version = require('hypercore/package.json').version
if (version !== EXPECTED_VERSION) {
  throw new Error(`expected hypercore@${EXPECTED_VERSION}, got ${version}`)
}

function out(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

let fixedSize = 0

function entry(i) {
  const size = fixedSize || 20 + (i % 7) * 40
  const b = Buffer.alloc(size, String.fromCharCode(97 + (i % 26)))
  const head = Buffer.from(`entry ${i} `)
  head.copy(b, 0, 0, Math.min(head.length, size))
  return b
}

function args() {
  const a = { _: [] }
  const argv = process.argv.slice(2)
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) a[argv[i].slice(2)] = argv[++i]
    else a._.push(argv[i])
  }
  return a
}

function tmpdir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'fritter-js-peer-'))
}

function replicateOver(core, socket, isInitiator) {
  const raw = core.replicate(isInitiator)
  pipeline(socket, raw, socket, (err) => {
    out({ event: 'stream-closed', initiator: isInitiator, error: err ? String(err.message) : null })
  })
  return raw
}

async function reader(a) {
  const key = Buffer.from(a.key, 'hex')
  const expect = Number(a.expect)
  const [host, port] = a.connect.split(':')
  const dir = tmpdir()
  const core = new Hypercore(dir, key, { compat: true })
  await core.ready()

  const socket = net.connect(Number(port), host)
  socket.on('error', (err) => out({ event: 'socket-error', error: err.message }))
  replicateOver(core, socket, true)

  // Download everything, including entries appended later.
  core.download({ start: 0, end: -1 })

  const started = Date.now()
  await new Promise((resolve) => {
    const check = () => {
      if (core.contiguousLength < expect) return
      core.off('download', check)
      core.off('append', check)
      resolve()
    }
    core.on('download', check)
    core.on('append', check)
    check()
  })
  // Reads verify against the signed tree; check the bytes too.
  let bad = 0
  for (let i = 0; i < expect; i++) {
    const b = await core.get(i)
    if (!b || !b.equals(entry(i))) bad++
  }
  out({
    event: 'synced',
    length: core.length,
    contiguous: core.contiguousLength,
    bad,
    ms: Date.now() - started,
    fork: core.fork,
    treeHash: (await core.treeHash()).toString('hex')
  })

  let last = core.contiguousLength
  const report = async () => {
    while (core.contiguousLength > last) {
      const i = last
      const b = await core.get(i)
      last++
      out({ event: 'length', length: core.length, contiguous: core.contiguousLength, index: i, ok: !!b && b.equals(entry(i)) })
    }
  }
  core.on('download', report)
  core.on('append', report)
  await report()
  process.stdin.on('end', () => process.exit(0))
  process.stdin.resume()
}

async function writer(a) {
  const seed = Buffer.from(a.seed, 'hex')
  const keyPair = crypto.keyPair(seed)
  const dir = tmpdir()
  const core = new Hypercore(dir, { keyPair, compat: true })
  await core.ready()
  const n = Number(a.entries || 0)
  for (let i = 0; i < n; i += 1000) {
    const batch = []
    for (let j = i; j < Math.min(n, i + 1000); j++) batch.push(entry(j))
    await core.append(batch)
  }
  const server = net.createServer((socket) => {
    socket.on('error', () => {})
    replicateOver(core, socket, false)
  })
  server.listen(Number(a.listen || 0), '127.0.0.1', () => {
    out({ event: 'ready', key: core.key.toString('hex'), port: server.address().port, length: core.length })
  })
  const rl = readline.createInterface({ input: process.stdin })
  rl.on('line', async (line) => {
    const [cmd, k] = line.trim().split(/\s+/)
    if (cmd === 'append') {
      const count = Number(k || 1)
      const batch = []
      for (let j = core.length; j < core.length + count; j++) batch.push(entry(j))
      await core.append(batch)
      out({ event: 'appended', length: core.length })
    }
  })
  rl.on('close', () => process.exit(0))
}

const a = args()
fixedSize = Number(a.size || 0)
const mode = a._[0]
const run = mode === 'reader' ? reader : mode === 'writer' ? writer : null
if (!run) {
  console.error('usage: peer.js reader --key HEX --connect HOST:PORT --expect N | writer --seed HEX --entries N')
  process.exit(2)
}
run(a).catch((err) => {
  out({ event: 'error', error: String(err && err.stack) })
  process.exit(1)
})
