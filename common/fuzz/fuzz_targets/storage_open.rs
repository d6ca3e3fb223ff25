//! `Log::open` on arbitrary `tree`, `data` and `bitfield` files (see `StorageInput` for the
//! layout), as a view, optionally then as a replica (which repairs a torn tail) and as the writer.
//! Checks: no panic, no hang (reads are bounded); a log that opens shows only a head the owner
//! signed and only the owner's bytes from verified reads; after a replica open the files reopen at
//! the same head; a writer's acknowledged append reads back.
#![no_main]

use fritter_common::log::{Access, Log};
use fritter_fuzz::{check_reads, keypair, StorageInput};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(input) = StorageInput::decode(data) else {
        return;
    };
    let disk = input.to_disk();
    let kp = keypair();
    let key = kp.public();

    if let Ok(view) = Log::open(&disk, key, Access::View) {
        check_reads(&view, "view");
    }

    if input.flags & StorageInput::REPLICA != 0 {
        if let Ok(replica) = Log::open(&disk, key, Access::Replica) {
            check_reads(&replica, "replica");
            let head = replica.head();
            drop(replica);
            let again = Log::open(&disk, key, Access::View)
                .unwrap_or_else(|e| panic!("does not reopen after a replica open: {e}"));
            assert_eq!(
                again.head(),
                head,
                "reopened at another head after a replica open"
            );
            check_reads(&again, "view after replica open");
        }
    }

    if input.flags & StorageInput::WRITER != 0 {
        if let Ok(writer) = Log::open(&disk, key, Access::Writer(kp)) {
            check_reads(&writer, "writer");
            let block = b"appended by the fuzzer".as_slice();
            if let Ok(seq) = writer.append(block) {
                assert_eq!(
                    seq + 1,
                    writer.len(),
                    "append returned seq {seq} but the log has {}",
                    writer.len()
                );
                match writer.get(seq) {
                    Ok(got) => {
                        assert_eq!(got, block, "acknowledged append reads back different bytes")
                    }
                    Err(e) => panic!("acknowledged append at {seq} does not read back: {e}"),
                }
            }
        }
    }
});
