//! Memory goal of the RT download (`make bench`, docs/INVARIANTS.md#attachment-limits): a 50 MiB attachment,
//! which RT hands out only as base64 inside JSON, is decoded as it streams, so the heap
//! grows by a bounded amount (a network chunk and a decoded chunk), not by the file's size.
//!
//! A counting allocator records the peak heap while a generated reply (produced chunk by
//! chunk, as a socket delivers it) is decoded and consumed. It prints the figure for
//! BENCHMARKS.md and fails if the peak exceeds the goal.

use base64::Engine as _;
use bytes::Bytes;
use futures::StreamExt;
use shared::adapters::rt::content_stream::{decode_content, max_reply_bytes};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwards to the system allocator with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const FILE_BYTES: usize = 50 * 1024 * 1024;
/// Raw bytes per generated chunk: 48 KiB encode to 64 KiB of base64, a typical read size.
const RAW_CHUNK: usize = 48 * 1024;
/// The goal: the heap grows by at most this much while the file streams through.
const PEAK_GOAL_BYTES: usize = 2 * 1024 * 1024;

fn reply_chunks() -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let prefix = Bytes::from_static(
        br#"{"id":10,"Filename":"big.bin","ContentType":"application/octet-stream","Content":""#,
    );
    let suffix = Bytes::from_static(br#"","ContentLength":"52428800"}"#);
    let body = futures::stream::iter((0..FILE_BYTES.div_ceil(RAW_CHUNK)).map(|i| {
        let len = RAW_CHUNK.min(FILE_BYTES - i * RAW_CHUNK);
        let raw: Vec<u8> = (0..len).map(|j| ((i * 31 + j) % 251) as u8).collect();
        Ok(Bytes::from(
            base64::engine::general_purpose::STANDARD.encode(raw),
        ))
    }));
    futures::stream::once(async move { Ok(prefix) })
        .chain(body)
        .chain(futures::stream::once(async move { Ok(suffix) }))
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let total = runtime.block_on(async {
        let max = FILE_BYTES as u64;
        let mut stream = decode_content("bench", reply_chunks(), max_reply_bytes(max), max);
        let mut total = 0usize;
        while let Some(chunk) = stream.next().await {
            total += chunk.unwrap_or_else(|e| panic!("decode: {e}")).len();
        }
        total
    });
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    assert_eq!(total, FILE_BYTES, "every byte decoded");
    println!(
        "rt_download: a {} MiB attachment streamed with a peak heap growth of {:.2} MiB (goal: at most {} MiB)",
        FILE_BYTES / (1024 * 1024),
        grew as f64 / (1024.0 * 1024.0),
        PEAK_GOAL_BYTES / (1024 * 1024)
    );
    if grew > PEAK_GOAL_BYTES {
        eprintln!("rt_download: over the memory goal");
        std::process::exit(1);
    }
}
