#!/usr/bin/env node
'use strict'

// Reference append throughput of the JS implementation (hypercore@11.37.1, pinned in
// package.json), on disk, for comparison with Fritter's log in the same run. Started by
// `cargo bench -p fritter-common --bench log`; can be run alone:
//
//   cd tests/js && npm ci
//   node tests/js/bench-append.js [--seconds 3] [--dir /tmp] [--size 300] [--quick]
//
// Prints one JSON object on stdout. Every phase runs on a fresh core in its own temp dir,
// which is removed afterwards.
//
// Note: hypercore 11 stores cores in RocksDB (hypercore-storage / rocksdb-native) and writes
// with RocksDB's default WriteOptions (sync = false): an awaited append is in the WAL / page
// cache, not fsync'd. Fritter's appends return only after fsync.

const fs = require('fs')
const os = require('os')
const path = require('path')
const crypto = require('crypto')

const Hypercore = require('hypercore')

const HYPERCORE_VERSION = require('hypercore/package.json').version

function parseArgs(argv) {
  const quick = !!process.env.FRITTER_BENCH_QUICK && process.env.FRITTER_BENCH_QUICK !== '0'
  const opts = { seconds: quick ? 0.5 : 3, dir: os.tmpdir(), size: 300, quick }
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') {
      opts.quick = true
      opts.seconds = 0.5
    } else if (a === '--seconds') opts.seconds = Number(argv[++i])
    else if (a === '--dir') opts.dir = argv[++i]
    else if (a === '--size') opts.size = Number(argv[++i])
    else throw new Error('unknown argument ' + a)
  }
  if (!(opts.seconds > 0) || !(opts.size > 0)) throw new Error('bad --seconds or --size')
  return opts
}

function block(size, i) {
  const b = crypto.randomBytes(size)
  b.writeUInt32LE(i >>> 0, 0)
  return b
}

async function withCore(opts, fn) {
  const dir = fs.mkdtempSync(path.join(opts.dir, 'fritter-js-bench-'))
  const core = new Hypercore(dir, { compat: true })
  await core.ready()
  try {
    return await fn(core)
  } finally {
    await core.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const now = () => Number(process.hrtime.bigint()) / 1e9

// Sequential `await core.append(block)`; 0.3 s of warm-up appends are not counted.
async function single(opts) {
  return withCore(opts, async (core) => {
    const pool = Array.from({ length: 1024 }, (_, i) => block(opts.size, i))
    let i = 0
    const warm = now() + Math.min(0.3, opts.seconds / 4)
    while (now() < warm) await core.append(pool[i++ & 1023])
    const lat = []
    const start = now()
    const end = start + opts.seconds
    let n = 0
    let t = start
    while (t < end) {
      await core.append(pool[i++ & 1023])
      const t2 = now()
      lat.push(t2 - t)
      t = t2
      n++
    }
    const elapsed = t - start
    lat.sort((a, b) => a - b)
    return {
      entries: n,
      seconds: elapsed,
      per_sec: n / elapsed,
      p50_us: lat[Math.floor(lat.length * 0.5)] * 1e6,
      p99_us: lat[Math.floor(lat.length * 0.99)] * 1e6,
      final_length: core.length
    }
  })
}

// `inflight` appends kept outstanding at once from one event loop (JS's analogue of many writers).
async function concurrent(opts, inflight) {
  return withCore(opts, async (core) => {
    const pool = Array.from({ length: 1024 }, (_, i) => block(opts.size, i))
    let i = 0
    let n = 0
    let stop = false
    const start = now()
    const end = start + opts.seconds
    async function worker() {
      while (!stop) {
        await core.append(pool[i++ & 1023])
        n++
        if (now() >= end) stop = true
      }
    }
    await Promise.all(Array.from({ length: inflight }, worker))
    const elapsed = now() - start
    return { inflight, entries: n, seconds: elapsed, per_sec: n / elapsed, final_length: core.length }
  })
}

// Sequential `await core.append([...batch blocks])`.
async function batched(opts, batch) {
  return withCore(opts, async (core) => {
    const batches = Array.from({ length: 16 }, (_, j) => Array.from({ length: batch }, (_, i) => block(opts.size, j * batch + i)))
    let j = 0
    const warm = now() + Math.min(0.3, opts.seconds / 4)
    while (now() < warm) await core.append(batches[j++ & 15])
    const start = now()
    const end = start + opts.seconds
    let n = 0
    let t = start
    while (t < end) {
      await core.append(batches[j++ & 15])
      n += batch
      t = now()
    }
    const elapsed = t - start
    return { batch, entries: n, seconds: elapsed, per_sec: n / elapsed, final_length: core.length }
  })
}

async function main() {
  const opts = parseArgs(process.argv)
  const out = {
    implementation: 'hypercore',
    version: HYPERCORE_VERSION,
    node: process.version,
    storage: 'hypercore-storage (RocksDB), default write options: appends are not fsync\'d',
    block_bytes: opts.size,
    seconds_per_phase: opts.seconds,
    dir: opts.dir
  }
  out.single = await single(opts)
  out.concurrent_64 = await concurrent(opts, 64)
  out.batch_100 = await batched(opts, 100)
  out.batch_1000 = await batched(opts, 1000)
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
