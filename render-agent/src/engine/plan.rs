//! `plan(request, context) -> EngineCommand`: the ffmpeg command line for a job spec, as data.
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
use renderfleet_core::spec::{Background, JobSpec, OutputSpec, Scene, TransitionKind, parse_color};

use super::RenderRequest;

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

/// What the planner needs besides the request: the engine's own settings.
#[derive(Clone, Copy, Debug)]
pub struct PlanContext<'a> {
    pub ffmpeg: &'a Path,
    pub font: &'a Path,
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
    assets: &'a HashMap<AssetId, LocalAsset>,
    id: &AssetId,
    used_as: &'static str,
    prefixes: &[&str],
) -> Result<&'a LocalAsset, PlanError> {
    let a = assets
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

/// Plans the ffmpeg run for `req`: the inputs and the filter graph scene by scene (source, texts,
/// fades), the scenes joined, the audio, then the encoder and output arguments.
pub fn plan(req: &RenderRequest<'_>, ctx: &PlanContext<'_>) -> Result<EngineCommand, PlanError> {
    let spec = req.spec;
    let font = safe_path(ctx.font)?;
    let frame = Frame::of(&spec.output);
    let mut args = global_args();
    let mut graph = String::new();
    let mut files = Vec::new();
    for (i, scene) in spec.scenes.iter().enumerate() {
        let (input, source) = scene_input(i, scene, &frame, req.assets)?;
        let (texts, text_files) = scene_texts(i, scene, frame.height, &font, req.workdir)?;
        args.extend(input);
        write!(graph, "{source}{texts}{}[s{i}];", scene_fades(spec, i)).expect("string");
        files.extend(text_files);
    }
    let (joined, len) = join_scenes(&spec.scenes);
    graph.push_str(&joined);
    let total = num(len);
    let (audio_args, audio_graph) = audio(spec, req.assets, &total)?;
    args.extend(audio_args);
    graph.push_str(&audio_graph);
    args.extend(output_args(
        graph,
        frame.fps,
        ctx.max_output_bytes,
        total,
        req.output,
    )?);
    Ok(EngineCommand {
        program: ctx.ffmpeg.to_path_buf(),
        args,
        files,
        duration: len,
    })
}

/// The options before the inputs: quiet, machine-readable progress on stdout, overwrite.
fn global_args() -> Vec<String> {
    [
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
    .to_vec()
}

/// The output frame, and the filters that bring every scene's source to it.
struct Frame {
    width: i64,
    height: i64,
    fps: i64,
    /// Scales a picture into the frame, padded with black.
    fit: String,
    /// The frame rate, pixel format, aspect and time base every scene is joined in.
    norm: String,
}

impl Frame {
    fn of(output: &OutputSpec) -> Self {
        let (w, h, fps) = (output.width, output.height, output.fps);
        Self {
            width: w,
            height: h,
            fps,
            fit: format!(
                "scale={w}:{h}:force_original_aspect_ratio=decrease,pad={w}:{h}:(ow-iw)/2:(oh-ih)/2:color=black"
            ),
            norm: format!("fps={fps},format=yuv420p,setsar=1,settb=AVTB"),
        }
    }
}

/// Scene `i`'s input arguments and the start of its filter chain: a generated colour, or an
/// image or video asset read as exactly one local file with a forced demuxer.
fn scene_input(
    i: usize,
    scene: &Scene,
    frame: &Frame,
    assets: &HashMap<AssetId, LocalAsset>,
) -> Result<(Vec<String>, String), PlanError> {
    let Frame {
        width: w,
        height: h,
        fps,
        fit,
        norm,
    } = frame;
    let d = num(scene.duration);
    Ok(match &scene.background {
        Background::Color(c) => {
            let color = format!("color=c={}:s={w}x{h}:r={fps}:d={d}", hex(c));
            (generated_input(color), format!("[{i}:v]{norm}"))
        }
        Background::Image(id) => {
            let a = asset(
                assets,
                id,
                "an image background",
                &["image/png", "image/jpeg"],
            )?;
            // image2 reading exactly this one file: no sequence patterns, no globbing.
            let fps = fps.to_string();
            let options = [
                "-pattern_type",
                "none",
                "-loop",
                "1",
                "-framerate",
                &fps,
                "-t",
                &d,
            ];
            let args = file_input("image2", &options, &a.path)?;
            (args, format!("[{i}:v]{fit},{norm}"))
        }
        Background::Video(id) => {
            let a = asset(assets, id, "a video background", &["video/mp4"])?;
            let args = file_input("mp4", &["-stream_loop", "-1", "-t", &d], &a.path)?;
            (args, format!("[{i}:v]{fit},{norm}"))
        }
    })
}

/// An input ffmpeg generates (`lavfi`) from `source`.
fn generated_input(source: String) -> Vec<String> {
    vec!["-f".into(), "lavfi".into(), "-i".into(), source]
}

/// An input read from exactly the local file `path` under a `file`-only protocol whitelist, with
/// the `demuxer` forced and its `options` before it.
fn file_input(demuxer: &str, options: &[&str], path: &Path) -> Result<Vec<String>, PlanError> {
    let mut args: Vec<String> = ["-protocol_whitelist", "file", "-f", demuxer]
        .map(String::from)
        .to_vec();
    args.extend(options.iter().map(|a| a.to_string()));
    args.extend(["-i".into(), safe_path(path)?]);
    Ok(args)
}

/// Scene `i`'s texts as drawtext filters, each text in its own file of the work directory
/// (returned with the filters, to be written before the run).
fn scene_texts(
    i: usize,
    scene: &Scene,
    height: i64,
    font: &str,
    workdir: &Path,
) -> Result<(String, Vec<(PathBuf, String)>), PlanError> {
    let mut filters = String::new();
    let mut files = Vec::new();
    for (j, t) in scene.texts.iter().enumerate() {
        let path = workdir.join(format!("text-{i}-{j}.txt"));
        let size = ((t.size * height as f64).round() as i64).max(1);
        write!(
            filters,
            ",drawtext=fontfile={font}:textfile={}:expansion=none:fontsize={size}:fontcolor={}:x=w*{}-text_w/2:y=h*{}-text_h/2",
            safe_path(&path)?,
            hex(&t.color),
            num(t.x),
            num(t.y),
        )
        .expect("writing to a string");
        files.push((path, t.text.clone()));
    }
    Ok((filters, files))
}

/// Scene `i`'s fades: in from black after a previous scene's fade, out to black at its own.
fn scene_fades(spec: &JobSpec, i: usize) -> String {
    let scene = &spec.scenes[i];
    let mut fades = String::new();
    // A fade on the previous scene means this one fades in from black.
    if let Some(prev) = i
        .checked_sub(1)
        .and_then(|p| spec.scenes[p].transition.as_ref())
        && prev.kind == TransitionKind::Fade
    {
        write!(
            fades,
            ",fade=t=in:st=0:d={}",
            num(prev.duration.min(scene.duration))
        )
        .expect("string");
    }
    if let Some(tr) = &scene.transition
        && tr.kind == TransitionKind::Fade
    {
        write!(
            fades,
            ",fade=t=out:st={}:d={}",
            num(scene.duration - tr.duration),
            num(tr.duration)
        )
        .expect("string");
    }
    fades
}

/// Joins the scenes `[s0]`, `[s1]`, ... into `[vout]`: concat, or xfade where the previous scene
/// crossfades into this one. Returns that part of the graph and the joined length in seconds.
fn join_scenes(scenes: &[Scene]) -> (String, f64) {
    let mut graph = String::new();
    let mut acc = "s0".to_owned();
    let mut len = scenes[0].duration;
    for (i, scene) in scenes.iter().enumerate().skip(1) {
        let next = format!("j{i}");
        match scenes[i - 1]
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
    write!(graph, "[{acc}]null[vout];").expect("string");
    (graph, len)
}

/// The audio input (the asset, or silence) after the scenes' inputs, and its chain to `[aout]`,
/// trimmed (and with an asset, padded) to the video's `total` length.
fn audio(
    spec: &JobSpec,
    assets: &HashMap<AssetId, LocalAsset>,
    total: &str,
) -> Result<(Vec<String>, String), PlanError> {
    let audio_input = spec.scenes.len();
    Ok(match &spec.audio {
        Some(a) => {
            let local = asset(
                assets,
                &a.asset,
                "an audio track",
                &["audio/mpeg", "audio/wav"],
            )?;
            let args = file_input(audio_demuxer(&local.content_type), &[], &local.path)?;
            let chain = format!(
                "[{audio_input}:a]volume={},aformat=sample_rates=48000:channel_layouts=stereo,apad,atrim=duration={total}[aout]",
                num(a.volume)
            );
            (args, chain)
        }
        None => (
            generated_input("anullsrc=r=48000:cl=stereo".into()),
            format!("[{audio_input}:a]atrim=duration={total}[aout]"),
        ),
    })
}

/// The graph and its outputs, H.264 and AAC at the spec's frame rate, the size cap, the length,
/// and the output file.
fn output_args(
    graph: String,
    fps: i64,
    max_output_bytes: u64,
    total: String,
    output: &Path,
) -> Result<Vec<String>, PlanError> {
    let mut args: Vec<String> = vec![
        "-filter_complex".into(),
        graph,
        "-map".into(),
        "[vout]".into(),
        "-map".into(),
        "[aout]".into(),
    ];
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
    args.push(max_output_bytes.to_string());
    args.extend(["-t".into(), total, safe_path(output)?]);
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> JobSpec {
        JobSpec::from_json(json.as_bytes()).unwrap()
    }

    /// Plans `spec` with `assets` downloaded into the work directory `workdir`.
    fn plan_in(
        spec: &JobSpec,
        assets: &HashMap<AssetId, LocalAsset>,
        workdir: &str,
    ) -> Result<EngineCommand, PlanError> {
        let req = RenderRequest {
            spec,
            workdir: Path::new(workdir),
            output: Path::new("/work/job_1/output.mp4"),
            assets,
            timeout: std::time::Duration::ZERO,
        };
        let ctx = PlanContext {
            ffmpeg: Path::new("ffmpeg"),
            font: Path::new("/fonts/DejaVuSans.ttf"),
            max_output_bytes: 1000,
        };
        plan(&req, &ctx)
    }

    fn plan_of(
        spec: &JobSpec,
        assets: &HashMap<AssetId, LocalAsset>,
    ) -> Result<EngineCommand, PlanError> {
        plan_in(spec, assets, "/work/job_1")
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
        let cmd = plan_of(&s, &assets).unwrap();
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
        let cmd = plan_of(&s, &assets).unwrap();
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
        let cmd = plan_of(&s, &assets).unwrap();
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
        let cmd = plan_of(&s, &assets).unwrap();
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
            plan_of(&s, &none),
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
            plan_of(&s, &wrong),
            Err(PlanError::WrongAssetType { .. })
        ));
    }

    #[test]
    fn unsafe_work_paths_are_refused() {
        let s = spec(
            r##"{"output":{"width":64,"height":64,"fps":10},"scenes":[{"duration":1,"background":{"color":"#000000"},"texts":[{"text":"a"}]}]}"##,
        );
        let assets = HashMap::new();
        assert!(matches!(
            plan_in(&s, &assets, "/tmp/x:y"),
            Err(PlanError::UnsafePath(_))
        ));
    }
}
