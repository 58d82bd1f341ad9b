//! The walking skeleton, end to end: from an empty fleet, six jobs submitted over HTTP make the
//! worker group grow past one, every output is a real MP4 (h264, the requested size, the requested
//! duration within one frame), the group returns to zero, and no agent process is left behind.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use renderfleet_core::job::JobState;
use renderfleet_core::ports::Fleet;
use renderfleet_e2e::{Stack, alive, ffprobe};
use serde_json::json;

fn job(width: u32, height: u32, fps: u32, durations: &[f64], title: &str) -> serde_json::Value {
    let scenes: Vec<_> = durations
        .iter()
        .enumerate()
        .map(|(i, d)| {
            json!({
                "duration": d,
                "background": { "color": format!("#{:02x}3050", 40 * i) },
                "texts": [ { "text": format!("{title} {i}"), "y": 0.45, "size": 0.1 } ],
                "transition": { "kind": "fade", "duration": 0.25 }
            })
        })
        .collect();
    json!({ "output": { "width": width, "height": height, "fps": fps }, "scenes": scenes })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn six_jobs_scale_the_fleet_out_render_real_mp4s_and_scale_back_to_zero() -> anyhow::Result<()>
{
    let mut stack = Stack::start(&[
        "--max-workers",
        "4",
        "--boot-delay",
        "2s",
        "--tick",
        "1s",
        "--idle-window",
        "4s",
    ])?;
    let fleet = stack.fleet().await;
    let start = fleet.describe().await?;
    assert_eq!(
        (start.desired, start.instances.len()),
        (0, 0),
        "the fleet starts empty"
    );

    let specs = [
        job(1280, 720, 30, &[2.0, 1.0], "Hello"),
        job(640, 360, 25, &[3.0], "Small"),
        job(720, 1280, 30, &[1.5], "Vertical"),
        job(320, 240, 15, &[2.0, 2.0], "Tiny"),
        job(1920, 1080, 24, &[1.0], "Full HD"),
        job(854, 480, 30, &[2.5], "SD"),
    ];
    let mut ids = Vec::new();
    for spec in &specs {
        let (status, body) = stack.post_job(spec).await?;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["state"], "queued");
        ids.push(body["id"].as_str().expect("an id").to_owned());
    }

    let mut peak_desired = 0;
    let mut agents_seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    let views = loop {
        peak_desired = peak_desired.max(fleet.describe().await?.desired);
        agents_seen.extend(stack.agent_pids());
        let views = stack.api.get_all(&ids).await?;
        if views.iter().all(|v| v.state.is_terminal()) {
            break views;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "jobs unfinished after 240 s: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(
        peak_desired > 1,
        "the fleet grew past one worker (peak {peak_desired})"
    );

    let dir = tempfile::tempdir()?;
    for (view, spec) in views.iter().zip(&specs) {
        assert_eq!(view.state, JobState::Succeeded, "{view:?}");
        let out = view.output.as_ref().expect("a succeeded job has an output");
        let path = dir.path().join(format!("{}.mp4", view.id));
        stack.api.download(&out.url, &path).await?;
        let p = ffprobe(&path)?;
        let fps = spec["output"]["fps"].as_f64().unwrap();
        let want: f64 = spec["scenes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["duration"].as_f64().unwrap())
            .sum();
        assert_eq!(p.video_codec, "h264", "{p:?}");
        assert_eq!(p.pix_fmt, "yuv420p", "{p:?}");
        assert_eq!(
            (p.width as u64, p.height as u64),
            (
                spec["output"]["width"].as_u64().unwrap(),
                spec["output"]["height"].as_u64().unwrap()
            )
        );
        assert!(
            (p.duration - want).abs() <= 1.0 / fps + 1e-6,
            "duration {} vs {want} at {fps} fps",
            p.duration
        );
    }

    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        agents_seen.extend(stack.agent_pids());
        let s = fleet.describe().await?;
        if s.desired == 0 && s.instances.is_empty() && stack.agent_pids().is_empty() {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the fleet did not return to zero: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(!agents_seen.is_empty());
    for pid in &agents_seen {
        assert!(!alive(*pid), "agent pid {pid} is still running");
    }
    let services = stack.service_pids().to_vec();
    stack.stop()?;
    for pid in services {
        assert!(!alive(pid), "service pid {pid} still runs after dev down");
    }
    Ok(())
}
