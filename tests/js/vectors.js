#!/usr/bin/env node
'use strict'

// Generates byte-exact Hypercore test vectors with the reference JS
// implementation (hypercore@11.37.1, pinned in package.json / package-lock.json).
//
//   cd tests/js && npm ci
//   node tests/js/vectors.js common/tests/vectors/hypercore-11.37.1.json
//
// Output is deterministic (ed25519 signatures are deterministic and the key
// pair is derived from a fixed seed). Storage lives in a temp dir that is
// removed afterwards.

const fs = require('fs')
const os = require('os')
const path = require('path')
const assert = require('assert')

const Hypercore = require('hypercore')
const crypto = require('hypercore-crypto')
const c = require('compact-encoding')
const { MerkleTree } = require('hypercore/lib/merkle-tree.js')
const messages = require('hypercore/lib/messages.js')
const caps = require('hypercore/lib/caps.js')

const HYPERCORE_VERSION = require('hypercore/package.json').version
const EXPECTED_VERSION = '11.37.1'
if (HYPERCORE_VERSION !== EXPECTED_VERSION) {
  throw new Error(`expected hypercore@${EXPECTED_VERSION}, got ${HYPERCORE_VERSION}`)
}

const TARGET_LENGTHS = [1, 2, 3, 1000, 32769, 100000]
const MAX_BATCH = 1000
const FORK_BASE_LENGTH = 1000
const FORK_TRUNCATE_TO = 900
const FORK_FINAL_LENGTH = 1005

const stats = { proofs: 0, errors: 0 }

// ---------------------------------------------------------------------------
// helpers

const hex = (b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

function blockValue(i) {
  return Buffer.from('entry ' + i + ' ' + 'x'.repeat(i % 61), 'utf-8')
}

function forkedValue(i) {
  return Buffer.from('forked ' + i, 'utf-8')
}

function nodeJson(n) {
  return { index: n.index, size: n.size, hash: hex(n.hash) }
}

const nodesJson = (nodes) => nodes.map(nodeJson)

// flat-tree: right-most leaf covered by node `index`
function rightSpan(index) {
  let depth = 0
  while (((index >> depth) & 1) === 1) depth++ // index fits in 32 bits here
  return index + (2 ** depth - 1)
}

function nodeExists(index, length) {
  return rightSpan(index) < 2 * length
}

function miss(i, length) {
  return MerkleTree.maxMissingNodes(2 * i, length)
}

function proofJson(p) {
  return {
    fork: p.fork,
    block: p.block
      ? { index: p.block.index, value: hex(p.block.value), nodes: nodesJson(p.block.nodes) }
      : null,
    hash: p.hash ? { index: p.hash.index, nodes: nodesJson(p.hash.nodes) } : null,
    seek: p.seek ? { bytes: p.seek.bytes, nodes: nodesJson(p.seek.nodes) } : null,
    upgrade: p.upgrade
      ? {
          start: p.upgrade.start,
          length: p.upgrade.length,
          nodes: nodesJson(p.upgrade.nodes),
          additionalNodes: nodesJson(p.upgrade.additionalNodes),
          signature: p.upgrade.signature ? hex(p.upgrade.signature) : null
        }
      : null
  }
}

function requestJson(req) {
  return {
    block: req.block ? { index: req.block.index, nodes: req.block.nodes } : null,
    hash: req.hash ? { index: req.hash.index, nodes: req.hash.nodes } : null,
    seek: req.seek ? { bytes: req.seek.bytes, padding: req.seek.padding } : null,
    upgrade: req.upgrade ? { start: req.upgrade.start, length: req.upgrade.length } : null
  }
}

// Generate a proof the way lib/replicator.js does (_handleRequest/_getProof):
// await MerkleTree.proof(...) BEFORE flushing the read batch. Flushing right
// after the call (as index.js Hypercore#proof and lib/core.js do) breaks seek
// requests: generateProof awaits the seek lookup before it queues its reads,
// so they would hit an already-flushed batch ("Cannot read properties of null
// (reading 'get')").
async function makeProof(core, req) {
  // fresh copy: generateProof may mutate the upgrade object (prologue handling)
  const r = requestJson(req)
  const rx = core.state.storage.read()
  let p
  try {
    p = await MerkleTree.proof(core.state, rx, r)
  } finally {
    rx.tryFlush()
  }
  const proof = await p.settle()
  if (proof.block) proof.block.value = await core.get(proof.block.index)
  return proof
}

async function proofEntry(core, name, req, expectedSignature) {
  const request = requestJson(req)
  let proof
  try {
    proof = await makeProof(core, req)
  } catch (err) {
    stats.errors++
    return { name, request, error: err.message }
  }
  stats.proofs++

  if (proof.upgrade) {
    assert(
      proof.upgrade.signature && Buffer.compare(proof.upgrade.signature, expectedSignature) === 0,
      `${name}: upgrade signature differs from stored signature`
    )
  }

  const wire = c.encode(messages.wire.data, {
    request: 0,
    fork: proof.fork,
    block: proof.block,
    hash: proof.hash,
    seek: proof.seek,
    upgrade: proof.upgrade,
    manifest: null
  })

  // round-trip sanity check of the encoding
  const decoded = c.decode(messages.wire.data, wire)
  assert.strictEqual(decoded.fork, proof.fork)

  return { name, request, proof: proofJson(proof), wire: hex(wire) }
}

function requestsFor(L, byteLength, subset = null) {
  const half = Math.floor(L / 2)
  const third = Math.floor(L / 3)
  const quarter = Math.floor(L / 4)
  const out = []
  const add = (name, req) => {
    const letter = name.split(':')[0]
    if (subset && !subset.includes(letter)) return
    out.push({ name, req })
  }

  add('a:upgrade', { upgrade: { start: 0, length: L } })
  add('b:block-first+upgrade', { block: { index: 0, nodes: 0 }, upgrade: { start: 0, length: L } })
  add('c:block-last+upgrade', {
    block: { index: L - 1, nodes: 0 },
    upgrade: { start: 0, length: L }
  })
  add('d:block-mid+upgrade', {
    block: { index: half, nodes: 0 },
    upgrade: { start: 0, length: L }
  })
  add('e:block-mid-missing', { block: { index: half, nodes: miss(half, L) } })
  if (miss(third, L) >= 1) add('f:block-third-1node', { block: { index: third, nodes: 1 } })

  const parent = 2 * half + 1
  const hashIndex = nodeExists(parent, L) ? parent : 2 * half
  add('g:hash', { hash: { index: hashIndex, nodes: MerkleTree.maxMissingNodes(hashIndex, L) } })

  const seekBytes = Math.floor(byteLength / 3)
  add('h:seek+upgrade', {
    seek: { bytes: seekBytes, padding: 0 },
    upgrade: { start: 0, length: L }
  })
  add('h:seek-only', { seek: { bytes: seekBytes, padding: 0 } })

  if (L >= 2) {
    add('i:upgrade-from-half', { upgrade: { start: half, length: L - half } })
  }
  if (L >= 4) {
    add('j:block-quarter-missing+upgrade-from-half', {
      block: { index: quarter, nodes: miss(quarter, L) },
      upgrade: { start: half, length: L - half }
    })
    // what a real reader at length floor(L/2) would ask for
    // (replicator uses missingNodes relative to its own length)
    add('j2:block-quarter-reader-missing+upgrade-from-half', {
      block: { index: quarter, nodes: miss(quarter, half) },
      upgrade: { start: half, length: L - half }
    })
  }
  if (L >= 2) {
    add('k:block-last+upgrade-from-half', {
      block: { index: L - 1, nodes: 0 },
      upgrade: { start: half, length: L - half }
    })
    add('l:upgrade-to-half', { upgrade: { start: 0, length: half } })
    add('m:block-first+upgrade-to-half', {
      block: { index: 0, nodes: 0 },
      upgrade: { start: 0, length: half }
    })
  }

  // negative vector: upgrading past the core's length must be refused
  add('n:upgrade-past-length', { upgrade: { start: 0, length: L + 1 } })

  // drop duplicate requests (happens for tiny L), keep the first name
  const seen = new Set()
  return out.filter(({ req }) => {
    const k = JSON.stringify(requestJson(req))
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

// Tree-level state of the core at its current length.
async function treeState(core, publicKey) {
  const state = core.state
  assert.strictEqual(state, core.core.state, 'default session shares the core state')

  const L = core.length
  assert.strictEqual(state.length, L)
  const roots = state.roots.map((r) => ({ index: r.index, size: r.size, hash: r.hash }))
  const fromStorage = await MerkleTree.getRoots(state, L)
  assert.deepStrictEqual(
    fromStorage.map(nodeJson),
    roots.map(nodeJson),
    'session roots == roots in storage'
  )

  const treeHash = crypto.tree(roots)
  assert(Buffer.compare(treeHash, await core.treeHash()) === 0, 'treeHash mismatch')

  const signature = state.signature
  assert(signature && signature.byteLength === 64, 'no signature stored')
  const signable = caps.treeSignableCompat(treeHash, L, core.fork, false)
  assert.strictEqual(signable.byteLength, 80)
  assert(crypto.verify(signable, signature, publicKey), 'signature does not verify')

  let byteLength = 0
  for (const r of roots) byteLength += r.size
  assert.strictEqual(byteLength, core.byteLength)

  return { roots, treeHash, signature, signable }
}

async function lengthObject(core, publicKey, subset = null) {
  const L = core.length
  const { roots, treeHash, signature, signable } = await treeState(core, publicKey)

  const proofs = []
  for (const { name, req } of requestsFor(L, core.byteLength, subset)) {
    proofs.push(await proofEntry(core, name, req, signature))
  }

  return {
    length: L,
    fork: core.fork,
    byteLength: core.byteLength,
    treeHash: hex(treeHash),
    signature: hex(signature),
    signable: hex(signable),
    roots: roots.map(nodeJson),
    proofs
  }
}

async function appendUntil(core, target, valueFn = blockValue) {
  while (core.length < target) {
    const start = core.length
    const end = Math.min(target, start + MAX_BATCH)
    const batch = []
    for (let i = start; i < end; i++) batch.push(valueFn(i))
    await core.append(batch)
  }
  assert.strictEqual(core.length, target)
}

async function withCore(keyPair, fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fritter-hc-vectors-'))
  const core = new Hypercore(dir, { keyPair, compat: true })
  try {
    await core.ready()
    assert(Buffer.compare(core.key, keyPair.publicKey) === 0, 'core.key != publicKey')
    return await fn(core)
  } finally {
    await core.close()
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

// ---------------------------------------------------------------------------

async function main() {
  const out = process.argv[2]
  if (!out) {
    console.error('usage: node vectors.js OUT.json')
    process.exit(2)
  }

  const t0 = Date.now()
  const seed = Buffer.alloc(32)
  for (let i = 0; i < 32; i++) seed[i] = i
  const keyPair = crypto.keyPair(seed)

  const result = {
    generator: 'hypercore@' + HYPERCORE_VERSION,
    seed: hex(seed),
    publicKey: hex(keyPair.publicKey),
    secretKey: hex(keyPair.secretKey),
    discoveryKey: null,
    namespaceTree: hex(crypto.namespace('hypercore', 6)[0]),
    blockFormula: 'entry {i} {x * (i % 61)}',
    leaves: [],
    lengths: [],
    fork: null
  }

  await withCore(keyPair, async (core) => {
    result.discoveryKey = hex(core.discoveryKey)
    assert.strictEqual(result.discoveryKey, hex(crypto.discoveryKey(keyPair.publicKey)))

    for (const L of TARGET_LENGTHS) {
      await appendUntil(core, L)
      result.lengths.push(await lengthObject(core, keyPair.publicKey))
    }

    for (let i = 0; i < 5; i++) {
      const leaf = crypto.data(blockValue(i))
      const stored = await MerkleTree.get(core.state, 2 * i)
      assert(Buffer.compare(leaf, stored.hash) === 0, 'leaf hash mismatch')
      result.leaves.push(hex(leaf))
    }
  })

  await withCore(keyPair, async (core) => {
    await appendUntil(core, FORK_BASE_LENGTH)
    const before = hex(crypto.tree(core.state.roots))
    assert.strictEqual(before, result.lengths.find((l) => l.length === 1000).treeHash)

    await core.truncate(FORK_TRUNCATE_TO)
    assert.strictEqual(core.length, FORK_TRUNCATE_TO)
    assert.strictEqual(core.fork, 1)
    const t = await treeState(core, keyPair.publicKey)
    const afterTruncate = {
      length: core.length,
      fork: core.fork,
      byteLength: core.byteLength,
      treeHash: hex(t.treeHash),
      signature: hex(t.signature),
      signable: hex(t.signable),
      roots: t.roots.map(nodeJson)
    }

    const batch = []
    for (let i = FORK_TRUNCATE_TO; i < FORK_FINAL_LENGTH; i++) batch.push(forkedValue(i))
    await core.append(batch)
    assert.strictEqual(core.length, FORK_FINAL_LENGTH)

    const final = await lengthObject(core, keyPair.publicKey, ['a', 'c', 'd', 'e'])
    const { proofs, ...head } = final
    result.fork = {
      ...head,
      baseLength: FORK_BASE_LENGTH,
      truncatedTo: FORK_TRUNCATE_TO,
      forkedBlockFormula: 'forked {i}',
      afterTruncate,
      proofs
    }
  })

  fs.writeFileSync(out, JSON.stringify(result, null, 1) + '\n')

  const size = fs.statSync(out).size
  console.error(
    `wrote ${out}: ${stats.proofs} proofs, ${stats.errors} errors, ` +
      `${(size / 1024).toFixed(1)} KiB, ${((Date.now() - t0) / 1000).toFixed(1)}s`
  )
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
