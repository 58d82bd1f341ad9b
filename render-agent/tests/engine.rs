//! The engines against the real thing: ffmpeg renders the whole spec, hostile text is drawn
//! literally (checked by OCR with tesseract), bad media is bad input, limits hold; the external
//! engine contract is honoured by a small script engine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use render_agent::engine::external::ExternalEngine;
use render_agent::engine::ffmpeg::{FfmpegEngine, MediaInfo, probe};
use render_agent::engine::mp4;
use render_agent::engine::{Engine, EngineError, LocalAsset, RenderRequest};
use renderfleet_core::ids::AssetId;
use renderfleet_core::spec::JobSpec;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

fn ffmpeg_engine(max_output_bytes: u64) -> FfmpegEngine {
    FfmpegEngine {
        ffmpeg: "ffmpeg".into(),
        ffprobe: "ffprobe".into(),
        font: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf".into(),
        max_output_bytes,
    }
}

async fn render(
    engine: &dyn Engine,
    spec: &serde_json::Value,
    dir: &Path,
    assets: &HashMap<AssetId, LocalAsset>,
    timeout: Duration,
) -> (Result<(), EngineError>, PathBuf, f64) {
    let spec = JobSpec::from_json(&serde_json::to_vec(spec).unwrap()).unwrap();
    let output = dir.join("output.mp4");
    let (tx, rx) = watch::channel(0.0);
    let req = RenderRequest {
        spec: &spec,
        workdir: dir,
        output: &output,
        assets,
        timeout,
    };
    let res = engine.render(req, &tx, CancellationToken::new()).await;
    let last = *rx.borrow();
    (res, output, last)
}

/// Renders `spec` with ffmpeg (a 1 GiB cap), no assets, within a minute.
async fn render_plain(
    spec: &serde_json::Value,
    dir: &Path,
) -> (Result<(), EngineError>, PathBuf, f64) {
    let none = HashMap::new();
    render(
        &ffmpeg_engine(1 << 30),
        spec,
        dir,
        &none,
        Duration::from_secs(60),
    )
    .await
}

/// Assets downloaded to the given files, by id.
fn local_assets<const N: usize>(
    list: [(&AssetId, PathBuf, &str); N],
) -> HashMap<AssetId, LocalAsset> {
    list.into_iter()
        .map(|(id, path, content_type)| {
            let asset = LocalAsset {
                path,
                content_type: content_type.into(),
            };
            (id.clone(), asset)
        })
        .collect()
}

fn ffmpeg(args: &[&str]) {
    let st = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg {args:?}");
}

/// Text of a frame at `at` seconds, read by tesseract.
fn ocr(video: &Path, at: f64) -> String {
    let png = video.with_extension("png");
    ffmpeg(&[
        "-ss",
        &at.to_string(),
        "-i",
        video.to_str().unwrap(),
        "-frames:v",
        "1",
        png.to_str().unwrap(),
    ]);
    let out = Command::new("tesseract")
        .arg(&png)
        .arg("stdout")
        .output()
        .expect("tesseract is installed by scripts/test");
    assert!(
        out.status.success(),
        "tesseract: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The agent's in-process MP4 check of `out`, asserted to read the duration (within 0.05 s) and
/// the video and audio stream counts that ffprobe reports.
fn mp4_agrees_with_ffprobe(out: &Path, p: &MediaInfo) -> mp4::Mp4Summary {
    let s = mp4::summary(out).unwrap();
    assert!(
        (s.duration - p.duration).abs() <= 0.05,
        "mp4 header {} s, ffprobe {} s",
        s.duration,
        p.duration
    );
    let count = |kind: &str| p.streams.iter().filter(|s| s.codec_type == kind).count() as u32;
    assert_eq!(
        (s.video_tracks, s.audio_tracks),
        (count("video"), count("audio"))
    );
    s
}

fn title_spec(text: &str) -> serde_json::Value {
    json!({
        "output": { "width": 1280, "height": 360, "fps": 10 },
        "scenes": [ { "duration": 1.0, "background": { "color": "#000000" },
                      "texts": [ { "text": text, "size": 0.12, "color": "#ffffff" } ] } ]
    })
}

#[tokio::test]
async fn a_plain_title_appears_in_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let (res, out, progress) = render_plain(&title_spec("RENDERFLEET WORKS"), dir.path()).await;
    res.unwrap();
    assert_eq!(progress, 1.0);
    let text = ocr(&out, 0.5);
    assert!(text.contains("RENDERFLEET WORKS"), "OCR read {text:?}");

    // The agent's in-process output check agrees with ffprobe, and refuses the file cut short.
    let p = probe(Path::new("ffprobe"), &out).await.unwrap();
    let s = mp4_agrees_with_ffprobe(&out, &p);
    assert!(s.media_bytes > 0);
    let bytes = std::fs::read(&out).unwrap();
    std::fs::write(&out, &bytes[..bytes.len() / 2]).unwrap();
    let cut = mp4::summary(&out).unwrap_err().to_string();
    assert!(cut.contains("past its end"), "{cut}");
}

#[tokio::test]
async fn an_injection_attempt_is_drawn_literally_and_reads_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let attack = "x';drawtext=textfile=/etc/passwd:x=0";
    let (res, out, _) = render_plain(&title_spec(attack), dir.path()).await;
    res.unwrap();
    let text = ocr(&out, 0.5);
    assert!(
        text.contains("drawtext"),
        "the attack is drawn as text: {text:?}"
    );
    assert!(
        !text.contains("root:"),
        "no file was read into the frame: {text:?}"
    );
}

#[tokio::test]
async fn a_corpus_of_hostile_strings_renders() {
    let corpus = [
        "it's \"quoted\"",
        "colon: comma, semicolon; equals=",
        "[brackets] {braces} (parens)",
        "back\\slash \\\\ \\n \\t",
        "%{localtime} %{pts:hms} %{eif:n:d} %{metadata:title}",
        "';drawtext=textfile=/etc/passwd:x=0[v0];",
        "line one\nline two\n\nline four",
        "עברית · مرحبا بالعالم",
        "emoji 🎬🔥👩‍👩‍👧 and ZWJ",
        "tab\tseparated",
        "%%{}%",
        "$(touch /tmp/renderfleet-pwned) `id`",
    ];
    let texts: Vec<_> = corpus
        .iter()
        .take(10)
        .map(|t| json!({ "text": t, "size": 0.05 }))
        .collect();
    let more: Vec<_> = corpus
        .iter()
        .skip(10)
        .map(|t| json!({ "text": t, "size": 0.05 }))
        .collect();
    let spec = json!({
        "output": { "width": 640, "height": 360, "fps": 10 },
        "scenes": [
            { "duration": 1.0, "background": { "color": "#203040" }, "texts": texts },
            { "duration": 1.0, "background": { "color": "#402030" }, "texts": more }
        ]
    });
    let dir = tempfile::tempdir().unwrap();
    let (res, out, _) = render_plain(&spec, dir.path()).await;
    res.unwrap();
    let p = probe(Path::new("ffprobe"), &out).await.unwrap();
    assert!((p.duration - 2.0).abs() < 0.15, "{p:?}");
    assert!(
        !Path::new("/tmp/renderfleet-pwned").exists(),
        "no shell ever ran the text"
    );
}

#[tokio::test]
async fn image_video_and_audio_assets_render_into_h264_and_aac() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = d.join("asset-0.png");
    let vid = d.join("asset-1.mp4");
    let aud = d.join("asset-2.wav");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc=s=400x300:d=1",
        "-frames:v",
        "1",
        img.to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=320x180:r=25:d=2",
        "-pix_fmt",
        "yuv420p",
        vid.to_str().unwrap(),
    ]);
    ffmpeg(&["-f", "lavfi", "-i", "sine=f=440:d=1", aud.to_str().unwrap()]);
    let (a, b, c) = (
        AssetId::generate(),
        AssetId::generate(),
        AssetId::generate(),
    );
    let assets = local_assets([
        (&a, img, "image/png"),
        (&b, vid, "video/mp4"),
        (&c, aud, "audio/wav"),
    ]);
    let spec = json!({
        "output": { "width": 640, "height": 360, "fps": 25 },
        "scenes": [
            { "duration": 1.5, "background": { "image": a.to_string() }, "texts": [ { "text": "image" } ],
              "transition": { "kind": "crossfade", "duration": 0.5 } },
            { "duration": 3.0, "background": { "video": b.to_string() }, "texts": [ { "text": "video, looped" } ],
              "transition": { "kind": "fade", "duration": 0.5 } }
        ],
        "audio": { "asset": c.to_string(), "volume": 0.5 }
    });
    let (res, out, _) = render(
        &ffmpeg_engine(1 << 30),
        &spec,
        d,
        &assets,
        Duration::from_secs(120),
    )
    .await;
    res.unwrap();
    let p = probe(Path::new("ffprobe"), &out).await.unwrap();
    let video = p.stream("video").unwrap();
    let audio = p.stream("audio").unwrap();
    assert_eq!(
        (video.codec_name.as_str(), video.width, video.height),
        ("h264", Some(640), Some(360))
    );
    assert_eq!(video.pix_fmt.as_deref(), Some("yuv420p"));
    assert_eq!(audio.codec_name, "aac");
    assert!(
        (p.duration - 4.0).abs() <= 0.1,
        "crossfaded length 4.0, got {}",
        p.duration
    );
    // The agent's in-process check reads the same duration and streams as ffprobe.
    let s = mp4_agrees_with_ffprobe(&out, &p);
    assert_eq!((s.video_tracks, s.audio_tracks), (1, 1));
    // +faststart puts the index before the media data.
    let head = std::fs::read(&out).unwrap();
    let moov = head.windows(4).position(|w| w == b"moov").unwrap();
    let mdat = head.windows(4).position(|w| w == b"mdat").unwrap();
    assert!(moov < mdat, "moov before mdat");
}

#[tokio::test]
async fn corrupt_media_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let vid = dir.path().join("asset-0.mp4");
    std::fs::write(&vid, b"this is not an mp4 at all, just text posing as one").unwrap();
    let id = AssetId::generate();
    let assets = local_assets([(&id, vid, "video/mp4")]);
    let spec = json!({ "output": { "width": 64, "height": 64, "fps": 10 },
        "scenes": [ { "duration": 1.0, "background": { "video": id.to_string() } } ] });
    let (res, _, _) = render(
        &ffmpeg_engine(1 << 30),
        &spec,
        dir.path(),
        &assets,
        Duration::from_secs(60),
    )
    .await;
    assert!(matches!(res, Err(EngineError::InvalidInput(_))), "{res:?}");
}

#[tokio::test]
async fn the_output_cap_and_the_wall_clock_limit_hold() {
    let dir = tempfile::tempdir().unwrap();
    let spec = json!({ "output": { "width": 1280, "height": 720, "fps": 30 },
        "scenes": [ { "duration": 20.0, "background": { "color": "#102030" }, "texts": [ { "text": "long" } ] } ] });
    let (res, _, _) = render(
        &ffmpeg_engine(20_000),
        &spec,
        dir.path(),
        &HashMap::new(),
        Duration::from_secs(120),
    )
    .await;
    assert!(
        matches!(res, Err(EngineError::OutputTooLarge(20_000))),
        "{res:?}"
    );
    let (res, _, _) = render(
        &ffmpeg_engine(1 << 30),
        &spec,
        dir.path(),
        &HashMap::new(),
        Duration::from_millis(300),
    )
    .await;
    assert!(matches!(res, Err(EngineError::Timeout(_))), "{res:?}");
}

fn script_engine(dir: &Path, body: &str) -> ExternalEngine {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("engine.sh");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    ExternalEngine {
        command: path,
        max_output_bytes: 1 << 20,
    }
}

#[tokio::test]
async fn an_external_engine_gets_the_spec_and_assets_and_reports_progress() {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let engine = script_engine(
        bin.path(),
        r#"grep -q '"assets"' "$1" || exit 1
echo "progress 0.25"
echo "progress 0.75"
cp "$1" "$2""#,
    );
    let id = AssetId::generate();
    let assets = local_assets([(&id, work.path().join("asset-0.png"), "image/png")]);
    let spec = json!({ "output": { "width": 64, "height": 64, "fps": 10 },
        "scenes": [ { "duration": 1.0, "background": { "image": id.to_string() } } ] });
    let (res, out, progress) = render(
        &engine,
        &spec,
        work.path(),
        &assets,
        Duration::from_secs(10),
    )
    .await;
    res.unwrap();
    assert_eq!(progress, 1.0);
    let written: serde_json::Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    assert_eq!(
        written["assets"][id.as_str()],
        work.path().join("asset-0.png").display().to_string()
    );
    assert_eq!(written["scenes"][0]["duration"], 1.0);
}

/// What the external engine `body` (a shell script) makes of a one-scene spec within `timeout`.
async fn script_result(body: &str, timeout: Duration) -> Result<(), EngineError> {
    let bin = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let spec = json!({ "output": { "width": 64, "height": 64, "fps": 10 },
        "scenes": [ { "duration": 1.0, "background": { "color": "#000000" } } ] });
    let engine = script_engine(bin.path(), body);
    render(&engine, &spec, work.path(), &HashMap::new(), timeout)
        .await
        .0
}

#[tokio::test]
async fn an_external_engine_exit_code_decides_retry_or_fail() {
    let limit = Duration::from_secs(10);
    let res = script_result("echo 'scene 0: unsupported' >&2; exit 2", limit).await;
    assert_eq!(
        res,
        Err(EngineError::InvalidInput("scene 0: unsupported".into()))
    );
    let res = script_result("exit 1", limit).await;
    assert!(matches!(res, Err(EngineError::Failed(_))), "{res:?}");
    let res = script_result("exit 0", limit).await;
    assert!(
        matches!(res, Err(EngineError::Failed(_))),
        "exit 0 without output is a failure: {res:?}"
    );
    let res = script_result("sleep 30", Duration::from_millis(300)).await;
    assert!(matches!(res, Err(EngineError::Timeout(_))), "{res:?}");
}
