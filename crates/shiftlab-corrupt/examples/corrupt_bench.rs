//! Benchmark helper for scripts/bench-corruptions.sh.
//!
//! `corrupt_bench IMAGE.png [MIN_SECONDS [ONLY,NAMES]]` prints, per corruption, single-thread images/s at the
//! image's size (mean thread CPU time over severities 1..5), then the batch API's throughput over all 19
//! corruptions x 5 severities with 1, 2 and all rayon threads. Tab-separated lines.

use std::time::Instant;

/// CPU time of the whole process (all threads), seconds.
fn process_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// CPU time of the calling thread, seconds (immune to other processes on a shared machine).
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

use shiftlab_corrupt::{corrupt, corrupt_batch, Corruption, FrostAssets, Preset, Severity};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .ok_or("usage: corrupt_bench IMAGE.png [MIN_SECONDS]")?;
    let min_s: f64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(0.3);
    // Optional: only these corruptions (comma-separated), and no batch part (for profiling).
    let only: Option<Vec<Corruption>> = args
        .next()
        .map(|s| s.split(',').map(|n| n.parse()).collect())
        .transpose()?;
    let img = image::open(&path)?.to_rgb8();
    let assets = FrostAssets::default_location()?;
    // BENCH_PRESET picks the constant table (default imagenet224).
    let preset = match std::env::var("BENCH_PRESET") {
        Ok(p) => Preset::from_name(&p)?,
        Err(_) => Preset::Imagenet224,
    };
    let pool1 = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    pool1.install(|| -> Result<(), shiftlab_corrupt::CorruptionError> {
        for c in Corruption::ALL {
            if only.as_ref().is_some_and(|o| !o.contains(&c)) {
                continue;
            }
            let mut per_sev = Vec::new();
            for s in Severity::ALL {
                // Warm-up, then repeat until min_s / 5 has passed.
                corrupt(&img, c, s, preset, 0, 0, &assets)?;
                let t = thread_cpu();
                let mut n = 0u64;
                while thread_cpu() - t < min_s / 5.0 || n < 3 {
                    corrupt(&img, c, s, preset, n, n, &assets)?;
                    n += 1;
                }
                per_sev.push((thread_cpu() - t) / n as f64);
            }
            let mean = per_sev.iter().sum::<f64>() / 5.0;
            println!("single\t{}\t{:.6}\t{:.1}", c.name(), mean * 1e3, 1.0 / mean);
        }
        Ok(())
    })?;
    if only.is_some() {
        return Ok(());
    }
    // Batch throughput: 16 copies per corruption x severity, all 19 x 5.
    let images: Vec<_> = (0..16).map(|_| img.clone()).collect();
    let keys: Vec<u64> = (0..16).collect();
    let all = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut threads = vec![1, 2];
    if all > 2 {
        threads.push(all);
    }
    for t in threads {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(t).build()?;
        let start = Instant::now();
        let cpu0 = process_cpu();
        let mut n = 0usize;
        pool.install(|| -> Result<(), shiftlab_corrupt::CorruptionError> {
            for c in Corruption::ALL {
                for s in Severity::ALL {
                    n += corrupt_batch(&images, &keys, c, s, preset, 7, &assets)?.len();
                }
            }
            Ok(())
        })?;
        let dt = start.elapsed().as_secs_f64();
        let cpu = process_cpu() - cpu0;
        println!(
            "batch\t{t}\t{n}\t{:.3}\t{:.1}\t{:.3}",
            dt,
            n as f64 / dt,
            cpu
        );
    }
    Ok(())
}
