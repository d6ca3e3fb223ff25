//! `wire::decode_data`, the wire's one proof codec, on untrusted bytes (a peer's `data` message),
//! then `verify_proof` against several signed heads and `Log::apply_proof` on an empty replica and
//! on a sparse replica at length 20. Checks: no panic; decode/encode round trip; after an applied
//! proof the replica's head is one the owner signed, every verified read returns the owner's
//! bytes, and the replica reopens from its storage at the same head.
#![no_main]

use fritter_common::log::sim::SimDisk;
use fritter_common::log::tree::verify_proof;
use fritter_common::log::{Access, Log, Proof, TreeHead};
use fritter_common::replicate::wire::{decode_data, encode_data};
use fritter_fuzz::{check_reads, copy_disk, world};
use libfuzzer_sys::fuzz_target;

fn apply_and_check(disk: &SimDisk, proof: &Proof, what: &str) {
    let w = world();
    let replica = Log::open(disk, w.key, Access::Replica)
        .unwrap_or_else(|e| panic!("{what}: template does not open: {e}"));
    let before = replica.head();
    let Ok(verified) = replica.apply_proof(proof) else {
        assert_eq!(
            replica.head(),
            before,
            "{what}: a refused proof changed the head"
        );
        return;
    };
    if let Some((seq, value)) = &verified.block {
        let head = replica.head();
        assert!(
            fritter_fuzz::truth(head.fork, *seq).as_ref() == Some(value),
            "{what}: proof for block {seq} verified with bytes the owner never wrote"
        );
    }
    check_reads(&replica, what);
    let head = replica.head();
    drop(replica);
    let reopened = Log::open(disk, w.key, Access::View)
        .unwrap_or_else(|e| panic!("{what}: does not reopen after apply: {e}"));
    assert_eq!(reopened.head(), head, "{what}: reopened at another head");
    check_reads(&reopened, what);
}

fuzz_target!(
    init: {
        // `FRITTER_FUZZ_WRITE_SEEDS=<dir>` writes the seed corpus of every target and exits.
        fritter_fuzz::seeds::write_if_asked();
        world();
    },
    |data: &[u8]| {
        let Ok((request, proof)) = decode_data(data) else { return };
        let again = decode_data(&encode_data(request, &proof).expect("a decoded proof encodes"))
            .expect("re-encoded proof decodes");
        assert_eq!(again, (request, proof.clone()), "wire round trip changed the proof");

        let w = world();
        for head in [&TreeHead::default(), &w.mid_head, &w.main_head, &w.forked_head] {
            if let Ok(v) = verify_proof(&proof, head, &w.key) {
                if let Some(up) = &v.upgrade {
                    assert!(
                        fritter_fuzz::truth_tree_hash(up.fork, up.length) == Some(up.hash()),
                        "verify_proof accepted an upgrade to fork {} length {} the owner never signed",
                        up.fork,
                        up.length
                    );
                }
            }
        }
        apply_and_check(&SimDisk::new(), &proof, "empty replica");
        apply_and_check(&copy_disk(&w.mid_replica), &proof, "mid replica");
    }
);
