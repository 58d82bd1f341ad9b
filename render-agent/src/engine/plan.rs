//! `plan(job, workdir) -> EngineCommand`: the ffmpeg command line for a job spec, as data.
//!
//! Pure: no I/O, no clock. User text never enters the filter graph: each text goes to its own file
//! in the job's private work directory, drawn with `textfile=` and `expansion=none`, so quotes,
//! colons, brackets, `%{...}` and the like are drawn as they are. Everything else in the graph
//! (numbers, colours, our own file names) is produced here from validated values. Inputs are only
//! files in the work directory, each with a forced demuxer, read under a `file`-only protocol
//! whitelist.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use renderfleet_core::ids::AssetId;
use renderfleet_core::spec::{Background, JobSpec, TransitionKind, parse_color};

/// A planned engine run: the files to write first, then the program and its arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct EngineCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Text files to write into the work directory before running, `(path, contents)`.
    pub files: Vec<(PathBuf, String)>,
    /// Length of the video the command produces, in seconds (0 where the planner cannot tell,
    /// as for an external engine).
    pub duration: f64,
}

/// An asset downloaded into the work directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalAsset {
    pub path: PathBuf,
    pub content_type: String,
}

/// What the planner needs besides the spec.
#[derive(Clone, Debug)]
pub struct PlanContext<'a> {
    pub ffmpeg: &'a Path,
    pub font: &'a Path,
    pub workdir: &'a Path,
    pub output: &'a Path,
    pub assets: &'a HashMap<AssetId, LocalAsset>,
    pub max_output_bytes: u64,
}

/// Why a spec cannot be planned (the job is then failed as invalid input).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("asset {0} was not downloaded")]
    MissingAsset(String),
    #[error("asset {id} is {content_type}, which cannot be used as {used_as}")]
    WrongAssetType {
        id: String,
        content_type: String,
        used_as: &'static str,
    },
    #[error("unsafe path {0:?}: work paths must be made of letters, digits, '/', '_', '.' and '-'")]
    UnsafePath(String),
}

/// Formats a number for the filter graph: fixed notation, no exponent, trailing zeros trimmed.
fn num(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

/// Paths in the graph are ours, but they are still checked: a character that means something to
/// the filter parser (`:`, `'`, `\`, `,`, `;`, `[`, `]`, `=`) must never reach it.
fn safe_path(p: &Path) -> Result<String, PlanError> {
    let s = p.to_string_lossy().into_owned();
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'.' | b'-'));
    if ok {
        Ok(s)
    } else {
        Err(PlanError::UnsafePath(s))
    }
}

fn hex(color: &str) -> String {
    let [r, g, b] = parse_color(color).unwrap_or([0, 0, 0]);
    format!("0x{r:02x}{g:02x}{b:02x}")
}

fn asset<'a>(
    ctx: &'a PlanContext<'_>,
    id: &AssetId,
    used_as: &'static str,
    prefixes: &[&str],
) -> Result<&'a LocalAsset, PlanError> {
    let a = ctx
        .assets
        .get(id)
        .ok_or_else(|| PlanError::MissingAsset(id.to_string()))?;
    if !prefixes.iter().any(|p| a.content_type == *p) {
        return Err(PlanError::WrongAssetType {
            id: id.to_string(),
            content_type: a.content_type.clone(),
            used_as,
        });
    }
    Ok(a)
}

/// The demuxer forced for an audio asset, so a file cannot pick its own (a playlist posing as
/// media could otherwise open other files).
fn audio_demuxer(content_type: &str) -> &'static str {
    if content_type == "audio/mpeg" {
        "mp3"
    } else {
        "wav"
    }
}

/// Plans the ffmpeg run for `spec`.
pub fn plan(spec: &JobSpec, ctx: &PlanContext<'_>) -> Result<EngineCommand, PlanError> {
    let (w, h, fps) = (spec.output.width, spec.output.height, spec.output.fps);
    let font = safe_path(ctx.font)?;
    let mut args: Vec<String> = [
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-progress",
        "pipe:1",
        "-y",
    ]
    .map(String::from)
    .to_vec();
    let mut files = Vec::new();
    let mut graph = String::new();
    let fit = format!(
        "scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black"
    );
    let norm = format!("fps={fps},format=yuv420p,setsar=1,settb=AVTB");

    for (i, scene) in spec.scenes.iter().enumerate() {
        let d = num(scene.duration);
        let source = match &scene.background {
            Background::Color(c) => {
                args.extend([
                    "-f".into(),
                    "lavfi".into(),
                    "-i".into(),
                    format!("color=c={}:s={w}x{h}:r={fps}:d={d}", hex(c)),
                ]);
                format!("[{i}:v]{norm}")
            }
            Background::Image(id) => {
                let a = asset(ctx, id, "an image background", &["image/png", "image/jpeg"])?;
                // image2 reading exactly this one file: no sequence patterns, no globbing.
                args.extend(
                    [
                        "-protocol_whitelist",
                        "file",
                        "-f",
                        "image2",
                        "-pattern_type",
                        "none",
                        "-loop",
                        "1",
                        "-framerate",
                    ]
                    .map(String::from),
                );
                args.extend([
                    fps.to_string(),
                    "-t".into(),
                    d.clone(),
                    "-i".into(),
                    safe_path(&a.path)?,
                ]);
                format!("[{i}:v]{fit},{norm}")
            }
            Background::Video(id) => {
                let a = asset(ctx, id, "a video background", &["video/mp4"])?;
                args.extend(
                    [
                        "-protocol_whitelist",
                        "file",
                        "-f",
                        "mp4",
                        "-stream_loop",
                        "-1",
                        "-t",
                    ]
                    .map(String::from),
                );
                args.extend([d.clone(), "-i".into(), safe_path(&a.path)?]);
                format!("[{i}:v]{fit},{norm}")
            }
        };
        graph.push_str(&source);
        for (j, t) in scene.texts.iter().enumerate() {
            let path = ctx.workdir.join(format!("text-{i}-{j}.txt"));
            let size = ((t.size * h as f64).round() as i64).max(1);
            write!(
                graph,
                ",drawtext=fontfile={font}:textfile={}:expansion=none:fontsize={size}:fontcolor={}:x=w*{}-text_w/2:y=h*{}-text_h/2",
                safe_path(&path)?,
                hex(&t.color),
                num(t.x),
                num(t.y),
            )
            .expect("writing to a string");
            files.push((path, t.text.clone()));
        }
        // A fade on the previous scene means this one fades in from black.
        if let Some(prev) = i
            .checked_sub(1)
            .and_then(|p| spec.scenes[p].transition.as_ref())
            && prev.kind == TransitionKind::Fade
        {
            write!(
                graph,
                ",fade=t=in:st=0:d={}",
                num(prev.duration.min(scene.duration))
            )
            .expect("string");
        }
        if let Some(tr) = &scene.transition
            && tr.kind == TransitionKind::Fade
        {
            write!(
                graph,
                ",fade=t=out:st={}:d={}",
                num(scene.duration - tr.duration),
                num(tr.duration)
            )
            .expect("string");
        }
        write!(graph, "[s{i}];").expect("string");
    }

    // Join the scenes: concat, or xfade where the previous scene crossfades into this one.
    let mut acc = "s0".to_owned();
    let mut len = spec.scenes[0].duration;
    for (i, scene) in spec.scenes.iter().enumerate().skip(1) {
        let next = format!("j{i}");
        match spec.scenes[i - 1]
            .transition
            .as_ref()
            .filter(|t| t.kind == TransitionKind::Crossfade)
        {
            Some(t) => {
                write!(
                    graph,
                    "[{acc}][s{i}]xfade=transition=fade:duration={}:offset={}[{next}];",
                    num(t.duration),
                    num(len - t.duration)
                )
                .expect("string");
                len += scene.duration - t.duration;
            }
            None => {
                write!(graph, "[{acc}][s{i}]concat=n=2:v=1:a=0[{next}];").expect("string");
                len += scene.duration;
            }
        }
        acc = next;
    }
    let total = num(len);
    write!(graph, "[{acc}]null[vout];").expect("string");

    let audio_input = spec.scenes.len();
    match &spec.audio {
        Some(a) => {
            let local = asset(
                ctx,
                &a.asset,
                "an audio track",
                &["audio/mpeg", "audio/wav"],
            )?;
            args.extend(
                [
                    "-protocol_whitelist",
                    "file",
                    "-f",
                    audio_demuxer(&local.content_type),
                    "-i",
                ]
                .map(String::from),
            );
            args.push(safe_path(&local.path)?);
            write!(
                graph,
                "[{audio_input}:a]volume={},aformat=sample_rates=48000:channel_layouts=stereo,apad,atrim=duration={total}[aout]",
                num(a.volume)
            )
            .expect("string");
        }
        None => {
            args.extend(["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"].map(String::from));
            write!(graph, "[{audio_input}:a]atrim=duration={total}[aout]").expect("string");
        }
    }

    args.extend([
        "-filter_complex".into(),
        graph,
        "-map".into(),
        "[vout]".into(),
        "-map".into(),
        "[aout]".into(),
    ]);
    args.extend(
        [
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-pix_fmt", "yuv420p", "-r",
        ]
        .map(String::from),
    );
    args.push(fps.to_string());
    args.extend(
        [
            "-c:a",
            "aac",
            "-b:a",
            "128k",
            "-movflags",
            "+faststart",
            "-fs",
        ]
        .map(String::from),
    );
    args.push(ctx.max_output_bytes.to_string());
    args.extend(["-t".into(), total, safe_path(ctx.output)?]);
    Ok(EngineCommand {
        program: ctx.ffmpeg.to_path_buf(),
        args,
        files,
        duration: len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> JobSpec {
        JobSpec::from_json(json.as_bytes()).unwrap()
    }

    fn ctx<'a>(assets: &'a HashMap<AssetId, LocalAsset>) -> PlanContext<'a> {
        PlanContext {
            ffmpeg: Path::new("ffmpeg"),
            font: Path::new("/fonts/DejaVuSans.ttf"),
            workdir: Path::new("/work/job_1"),
            output: Path::new("/work/job_1/output.mp4"),
            assets,
            max_output_bytes: 1000,
        }
    }

    fn graph(cmd: &EngineCommand) -> &str {
        let i = cmd
            .args
            .iter()
            .position(|a| a == "-filter_complex")
            .unwrap();
        &cmd.args[i + 1]
    }

    #[test]
    fn a_colour_scene_with_text_and_fade_plans_exactly() {
        let s = spec(
            r##"{"output":{"width":1280,"height":720,"fps":30},"scenes":[{"duration":3,"background":{"color":"#0b1d3a"},
                "texts":[{"text":"Hello","x":0.5,"y":0.4,"size":0.08,"color":"#ffffff"}],
                "transition":{"kind":"fade","duration":0.5}}]}"##,
        );
        let assets = HashMap::new();
        let cmd = plan(&s, &ctx(&assets)).unwrap();
        let expected: Vec<String> = [
            "-hide_banner", "-nostdin", "-nostats", "-loglevel", "error", "-progress", "pipe:1", "-y",
            "-f", "lavfi", "-i", "color=c=0x0b1d3a:s=1280x720:r=30:d=3",
            "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
            "-filter_complex",
            "[0:v]fps=30,format=yuv420p,setsar=1,settb=AVTB,drawtext=fontfile=/fonts/DejaVuSans.ttf:textfile=/work/job_1/text-0-0.txt:expansion=none:fontsize=58:fontcolor=0xffffff:x=w*0.5-text_w/2:y=h*0.4-text_h/2,fade=t=out:st=2.5:d=0.5[s0];[s0]null[vout];[1:a]atrim=duration=3[aout]",
            "-map", "[vout]", "-map", "[aout]",
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "21", "-pix_fmt", "yuv420p", "-r", "30",
            "-c:a", "aac", "-b:a", "128k", "-movflags", "+faststart", "-fs", "1000",
            "-t", "3", "/work/job_1/output.mp4",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(cmd.args, expected);
        assert_eq!(
            cmd.files,
            vec![(
                PathBuf::from("/work/job_1/text-0-0.txt"),
                "Hello".to_owned()
            )]
        );
        assert_eq!(cmd.duration, 3.0);
    }

    #[test]
    fn hostile_text_goes_to_a_file_and_never_into_the_graph() {
        let hostile = r#"';drawtext=textfile=/etc/passwd:x=0[v];%{localtime} \, [0:v] "#;
        let s = spec(&format!(
            r##"{{"output":{{"width":64,"height":64,"fps":10}},"scenes":[{{"duration":1,"background":{{"color":"#000000"}},"texts":[{{"text":{}}}]}}]}}"##,
            serde_json::to_string(hostile).unwrap()
        ));
        let assets = HashMap::new();
        let cmd = plan(&s, &ctx(&assets)).unwrap();
        assert!(!graph(&cmd).contains("passwd"));
        assert!(!graph(&cmd).contains("localtime"));
        assert!(cmd.args.iter().all(|a| !a.contains("passwd")));
        assert_eq!(cmd.files[0].1, hostile);
    }

    #[test]
    fn crossfades_overlap_and_fades_dip_through_black() {
        let s = spec(
            r##"{"output":{"width":64,"height":64,"fps":10},"scenes":[
                {"duration":2,"background":{"color":"#ff0000"},"transition":{"kind":"crossfade","duration":0.5}},
                {"duration":2,"background":{"color":"#00ff00"},"transition":{"kind":"fade","duration":0.25}},
                {"duration":1,"background":{"color":"#0000ff"}}]}"##,
        );
        let assets = HashMap::new();
        let cmd = plan(&s, &ctx(&assets)).unwrap();
        let g = graph(&cmd);
        assert!(
            g.contains("[s0][s1]xfade=transition=fade:duration=0.5:offset=1.5[j1];"),
            "{g}"
        );
        assert!(g.contains("fade=t=out:st=1.75:d=0.25[s1];"), "{g}");
        assert!(g.contains("fade=t=in:st=0:d=0.25[s2];"), "{g}");
        assert!(g.contains("[j1][s2]concat=n=2:v=1:a=0[j2];"), "{g}");
        assert_eq!(cmd.duration, 4.5);
        assert_eq!(&cmd.args[cmd.args.len() - 2], "4.5");
    }

    #[test]
    fn assets_are_local_files_with_forced_demuxers() {
        let img = AssetId::generate();
        let vid = AssetId::generate();
        let aud = AssetId::generate();
        let mut assets = HashMap::new();
        assets.insert(
            img.clone(),
            LocalAsset {
                path: "/work/job_1/asset-0.png".into(),
                content_type: "image/png".into(),
            },
        );
        assets.insert(
            vid.clone(),
            LocalAsset {
                path: "/work/job_1/asset-1.mp4".into(),
                content_type: "video/mp4".into(),
            },
        );
        assets.insert(
            aud.clone(),
            LocalAsset {
                path: "/work/job_1/asset-2.mp3".into(),
                content_type: "audio/mpeg".into(),
            },
        );
        let s = spec(&format!(
            r##"{{"output":{{"width":640,"height":360,"fps":25}},"scenes":[
                {{"duration":1.5,"background":{{"image":"{img}"}}}},
                {{"duration":2,"background":{{"video":"{vid}"}}}}],
                "audio":{{"asset":"{aud}","volume":0.5}}}}"##
        ));
        let cmd = plan(&s, &ctx(&assets)).unwrap();
        let a = cmd.args.join(" ");
        assert!(a.contains("-protocol_whitelist file -f image2 -pattern_type none -loop 1 -framerate 25 -t 1.5 -i /work/job_1/asset-0.png"), "{a}");
        assert!(
            a.contains(
                "-protocol_whitelist file -f mp4 -stream_loop -1 -t 2 -i /work/job_1/asset-1.mp4"
            ),
            "{a}"
        );
        assert!(
            a.contains("-protocol_whitelist file -f mp3 -i /work/job_1/asset-2.mp3"),
            "{a}"
        );
        let g = graph(&cmd);
        assert!(
            g.contains("[0:v]scale=640:360:force_original_aspect_ratio=decrease,pad=640:360"),
            "{g}"
        );
        assert!(g.contains("[2:a]volume=0.5,aformat=sample_rates=48000:channel_layouts=stereo,apad,atrim=duration=3.5[aout]"), "{g}");
    }

    #[test]
    fn a_missing_or_mistyped_asset_is_refused() {
        let img = AssetId::generate();
        let s = spec(&format!(
            r##"{{"output":{{"width":64,"height":64,"fps":10}},"scenes":[{{"duration":1,"background":{{"image":"{img}"}}}}]}}"##
        ));
        let none = HashMap::new();
        assert!(matches!(
            plan(&s, &ctx(&none)),
            Err(PlanError::MissingAsset(_))
        ));
        let mut wrong = HashMap::new();
        wrong.insert(
            img,
            LocalAsset {
                path: "/work/job_1/asset-0.wav".into(),
                content_type: "audio/wav".into(),
            },
        );
        assert!(matches!(
            plan(&s, &ctx(&wrong)),
            Err(PlanError::WrongAssetType { .. })
        ));
    }

    #[test]
    fn unsafe_work_paths_are_refused() {
        let s = spec(
            r##"{"output":{"width":64,"height":64,"fps":10},"scenes":[{"duration":1,"background":{"color":"#000000"},"texts":[{"text":"a"}]}]}"##,
        );
        let assets = HashMap::new();
        let mut c = ctx(&assets);
        c.workdir = Path::new("/tmp/x:y");
        assert!(matches!(plan(&s, &c), Err(PlanError::UnsafePath(_))));
    }
}
