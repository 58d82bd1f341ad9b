//! Job spec v1: the body of `POST /v1/jobs`, its parsing and its validation.
//!
//! Parsing and validation both name the JSON path of what is wrong (`scenes[2].texts[0].size`), so
//! a client can fix its request without guessing. Parsing rejects unknown fields; validation checks
//! every range and limit. Nothing here interprets user text: it is data from end to end.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::ids::AssetId;

/// Output frame sizes (each side), inclusive.
pub const SIZE_RANGE: (i64, i64) = (16, 3840);
/// Frames per second, inclusive.
pub const FPS_RANGE: (i64, i64) = (1, 60);
/// The longest video a job may produce, in seconds.
pub const MAX_TOTAL_DURATION: f64 = 600.0;
/// Scenes per job.
pub const MAX_SCENES: usize = 200;
/// Text overlays per scene.
pub const MAX_TEXTS: usize = 10;
/// Characters (Unicode scalar values) per text overlay.
pub const MAX_TEXT_CHARS: usize = 500;
/// Serialized size of `metadata`, in bytes.
pub const MAX_METADATA_BYTES: usize = 4096;
/// Priority range, inclusive; higher renders first.
pub const PRIORITY_RANGE: (i64, i64) = (0, 9);
/// Audio volume range, inclusive (1.0 is the asset's own level).
pub const VOLUME_RANGE: (f64, f64) = (0.0, 4.0);

/// A render job: what to render and how the result should look.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub output: OutputSpec,
    /// Scenes in order; at least one.
    pub scenes: Vec<Scene>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<AudioSpec>,
    /// 0 (lowest) to 9 (highest); default 5.
    #[serde(default = "default_priority")]
    pub priority: i64,
    /// Free-form client data returned with the job, at most 4 KiB as JSON.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: Map<String, Value>,
}

fn default_priority() -> i64 {
    5
}

/// The output video.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// Even, 16..=3840 pixels.
    pub width: i64,
    /// Even, 16..=3840 pixels.
    pub height: i64,
    /// 1..=60 frames per second.
    pub fps: i64,
    #[serde(default)]
    pub format: OutputFormat,
}

/// Container of the output. Only MP4 (H.264 + AAC) in v1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Mp4,
}

/// One scene: a background shown for `duration` seconds with text on top.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Scene {
    /// Seconds, greater than zero.
    pub duration: f64,
    pub background: Background,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub texts: Vec<TextOverlay>,
    /// How this scene ends: `fade` dips to black, `crossfade` dissolves into the next scene.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transition: Option<Transition>,
}

/// A scene's background: exactly one of a colour, an image asset or a video asset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Background {
    /// `#rrggbb`.
    Color(String),
    /// An uploaded `image/png` or `image/jpeg` asset, scaled and padded to the output size.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    Image(AssetId),
    /// An uploaded `video/mp4` asset, scaled, padded, and trimmed or looped to the scene.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    Video(AssetId),
}

/// Text drawn literally on a scene.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TextOverlay {
    /// Drawn exactly as given; `\n` breaks lines. At most 500 characters.
    pub text: String,
    /// Horizontal centre of the text as a fraction of the width, 0..=1; default 0.5.
    #[serde(default = "half")]
    pub x: f64,
    /// Vertical centre of the text as a fraction of the height, 0..=1; default 0.5.
    #[serde(default = "half")]
    pub y: f64,
    /// Font size as a fraction of the height, (0, 1]; default 0.08.
    #[serde(default = "default_text_size")]
    pub size: f64,
    /// `#rrggbb`; default white.
    #[serde(default = "default_text_color")]
    pub color: String,
}

fn half() -> f64 {
    0.5
}
fn default_text_size() -> f64 {
    0.08
}
fn default_text_color() -> String {
    "#ffffff".to_owned()
}

/// How a scene ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Transition {
    pub kind: TransitionKind,
    /// Seconds, greater than zero and no longer than the scene (and, for a crossfade, the next).
    pub duration: f64,
}

/// `fade`: fade out to black at the end of the scene (and the next scene fades in from black).
/// `crossfade`: dissolve into the next scene; the two overlap for `duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum TransitionKind {
    Fade,
    Crossfade,
}

/// An audio track laid under the whole video, trimmed or padded with silence to its length.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AudioSpec {
    /// An uploaded `audio/mpeg` or `audio/wav` asset.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub asset: AssetId,
    /// Gain, 0..=4; 1 keeps the asset's level. Default 1.
    #[serde(default = "one")]
    pub volume: f64,
}

fn one() -> f64 {
    1.0
}

/// What is wrong with a spec, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SpecError {
    /// A stable machine-readable code, e.g. `out_of_range`.
    pub code: &'static str,
    /// The JSON path of the offending value, e.g. `scenes[0].duration`; empty for the whole body.
    pub field: String,
    /// What to fix, in a sentence.
    pub message: String,
}

impl SpecError {
    fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    fn out_of_range(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::new("out_of_range", field, message)
    }
}

impl JobSpec {
    /// Parses and validates a request body. Errors name the JSON path of the problem.
    pub fn from_json(body: &[u8]) -> Result<Self, SpecError> {
        let spec = Self::parse(body)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parses without the semantic checks of [`JobSpec::validate`].
    pub fn parse(body: &[u8]) -> Result<Self, SpecError> {
        // The fast path: most bodies are valid, and tracking the path costs an allocation per
        // key. Only a body that fails is parsed again to say where.
        // Checking the UTF-8 once here spares serde_json checking every string again.
        if let Ok(text) = std::str::from_utf8(body)
            && let Ok(spec) = serde_json::from_str::<JobSpec>(text)
        {
            return Ok(spec);
        }
        let de = &mut serde_json::Deserializer::from_slice(body);
        match serde_path_to_error::deserialize::<_, JobSpec>(de) {
            Ok(spec) => Ok(spec),
            Err(err) => Err(crate::api::json_error(
                err.inner(),
                display_path(err.path()),
            )),
        }
    }

    /// Checks every range and limit of job spec v1, in order: the output, the scene count, each
    /// scene (its duration, background, texts and transition), the video's length, the audio,
    /// the priority and the metadata. The first problem found is the one reported.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_output(&self.output)?;
        check_scene_count(self.scenes.len())?;
        // Summed in scene order, as the error message reports it.
        let mut total = 0.0;
        for (i, scene) in self.scenes.iter().enumerate() {
            check_scene(i, scene, self.scenes.get(i + 1))?;
            total += scene.duration;
            if let Some(overlap) = crossfade_overlap(scene) {
                total -= overlap;
            }
        }
        check_total_duration(total)?;
        if let Some(a) = &self.audio {
            check_within("audio.volume", VOLUME_RANGE, a.volume)?;
        }
        check_within("priority", PRIORITY_RANGE, self.priority)?;
        check_metadata(&self.metadata)
    }

    /// Length of the rendered video in seconds: the scenes' durations less crossfade overlaps.
    pub fn total_duration(&self) -> f64 {
        self.scenes
            .iter()
            .map(|s| match &s.transition {
                Some(t) if t.kind == TransitionKind::Crossfade => s.duration - t.duration,
                _ => s.duration,
            })
            .sum()
    }

    /// Every asset the spec references, with the JSON path that references it.
    pub fn asset_refs(&self) -> Vec<(String, &AssetId, AssetUse)> {
        let mut refs = Vec::new();
        for (i, s) in self.scenes.iter().enumerate() {
            match &s.background {
                Background::Image(id) => {
                    refs.push((format!("scenes[{i}].background.image"), id, AssetUse::Image))
                }
                Background::Video(id) => {
                    refs.push((format!("scenes[{i}].background.video"), id, AssetUse::Video))
                }
                Background::Color(_) => {}
            }
        }
        if let Some(a) = &self.audio {
            refs.push(("audio.asset".to_owned(), &a.asset, AssetUse::Audio));
        }
        refs
    }
}

/// What a referenced asset is used as, which decides the content types it may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AssetUse {
    Image,
    Video,
    Audio,
}

/// The length of `value` written as compact JSON, counted without building it.
fn json_len(value: &impl Serialize) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::to_writer(&mut count, value) {
        Ok(()) => count.0,
        Err(_) => usize::MAX,
    }
}

/// `v` within the inclusive `range`, or an `out_of_range` error naming `field`.
fn check_within<T: PartialOrd + Copy + std::fmt::Display>(
    field: &'static str,
    (lo, hi): (T, T),
    v: T,
) -> Result<(), SpecError> {
    if !(lo..=hi).contains(&v) {
        return Err(SpecError::out_of_range(
            field,
            format!("must be between {lo} and {hi}, got {v}"),
        ));
    }
    Ok(())
}

fn check_output(o: &OutputSpec) -> Result<(), SpecError> {
    for (name, v) in [("output.width", o.width), ("output.height", o.height)] {
        if v < SIZE_RANGE.0 || v > SIZE_RANGE.1 || v % 2 != 0 {
            return Err(SpecError::out_of_range(
                name,
                format!(
                    "must be an even number of pixels between {} and {}, got {v}",
                    SIZE_RANGE.0, SIZE_RANGE.1
                ),
            ));
        }
    }
    check_within("output.fps", FPS_RANGE, o.fps)
}

fn check_scene_count(scenes: usize) -> Result<(), SpecError> {
    if scenes == 0 {
        return Err(SpecError::new(
            "required",
            "scenes",
            "must hold at least one scene",
        ));
    }
    if scenes > MAX_SCENES {
        return Err(SpecError::new(
            "too_many",
            "scenes",
            format!("at most {MAX_SCENES} scenes, got {scenes}"),
        ));
    }
    Ok(())
}

/// Scene `i`: its duration, background, texts and transition; `next` is the scene after it.
fn check_scene(i: usize, scene: &Scene, next: Option<&Scene>) -> Result<(), SpecError> {
    // Paths are built only for an error: a valid spec allocates none.
    let at = |rest: &str| format!("scenes[{i}]{rest}");
    if !scene.duration.is_finite() || scene.duration <= 0.0 {
        return Err(SpecError::out_of_range(
            at(".duration"),
            format!(
                "must be a number of seconds greater than 0, got {}",
                scene.duration
            ),
        ));
    }
    if let Background::Color(c) = &scene.background {
        check_color(c, || at(".background.color"))?;
    }
    if scene.texts.len() > MAX_TEXTS {
        return Err(SpecError::new(
            "too_many",
            at(".texts"),
            format!(
                "at most {MAX_TEXTS} texts per scene, got {}",
                scene.texts.len()
            ),
        ));
    }
    for (j, t) in scene.texts.iter().enumerate() {
        check_overlay(t, |rest| format!("scenes[{i}].texts[{j}]{rest}"))?;
    }
    match &scene.transition {
        Some(tr) => check_transition(tr, scene, next, at),
        None => Ok(()),
    }
}

/// One text overlay; `at` builds the path of one of its fields.
fn check_overlay(t: &TextOverlay, at: impl Fn(&str) -> String) -> Result<(), SpecError> {
    check_text(&t.text, || at(".text"))?;
    for (name, v) in [(".x", t.x), (".y", t.y)] {
        if !(0.0..=1.0).contains(&v) {
            return Err(SpecError::out_of_range(
                at(name),
                format!("must be a fraction of the frame between 0 and 1, got {v}"),
            ));
        }
    }
    if !(t.size > 0.0 && t.size <= 1.0) {
        return Err(SpecError::out_of_range(
            at(".size"),
            format!(
                "must be a fraction of the height greater than 0 and at most 1, got {}",
                t.size
            ),
        ));
    }
    check_color(&t.color, || at(".color"))
}

/// How `scene` ends: no longer than it, and a crossfade needs a `next` scene at least as long.
fn check_transition(
    tr: &Transition,
    scene: &Scene,
    next: Option<&Scene>,
    at: impl Fn(&str) -> String,
) -> Result<(), SpecError> {
    let field = || at(".transition.duration");
    if !tr.duration.is_finite() || tr.duration <= 0.0 || tr.duration > scene.duration {
        return Err(SpecError::out_of_range(
            field(),
            format!(
                "must be greater than 0 and at most the scene's duration ({}), got {}",
                scene.duration, tr.duration
            ),
        ));
    }
    if tr.kind != TransitionKind::Crossfade {
        return Ok(());
    }
    let Some(next) = next else {
        return Err(SpecError::new(
            "invalid_transition",
            at(".transition.kind"),
            "a crossfade needs a following scene; use fade on the last scene",
        ));
    };
    if tr.duration > next.duration {
        return Err(SpecError::out_of_range(
            field(),
            format!(
                "a crossfade may not be longer than the next scene ({}), got {}",
                next.duration, tr.duration
            ),
        ));
    }
    Ok(())
}

/// How long `scene` overlaps the next one: its crossfade's duration, if it ends in one.
fn crossfade_overlap(scene: &Scene) -> Option<f64> {
    scene
        .transition
        .as_ref()
        .filter(|t| t.kind == TransitionKind::Crossfade)
        .map(|t| t.duration)
}

fn check_total_duration(total: f64) -> Result<(), SpecError> {
    if total > MAX_TOTAL_DURATION {
        return Err(SpecError::new(
            "too_long",
            "scenes",
            format!(
                "the video may last at most {MAX_TOTAL_DURATION} s, these scenes last {total} s"
            ),
        ));
    }
    Ok(())
}

fn check_metadata(metadata: &Map<String, Value>) -> Result<(), SpecError> {
    let meta = json_len(metadata);
    if meta > MAX_METADATA_BYTES {
        return Err(SpecError::new(
            "too_large",
            "metadata",
            format!("must be at most {MAX_METADATA_BYTES} bytes as JSON, got {meta}"),
        ));
    }
    Ok(())
}

fn check_color(c: &str, field: impl FnOnce() -> String) -> Result<(), SpecError> {
    if parse_color(c).is_none() {
        return Err(SpecError::new(
            "invalid_color",
            field(),
            format!(
                "must be a colour written #rrggbb, got {:?}",
                truncate(c, 40)
            ),
        ));
    }
    Ok(())
}

/// Parses `#rrggbb` into its three bytes.
pub fn parse_color(c: &str) -> Option<[u8; 3]> {
    let hex = c.strip_prefix('#')?;
    if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let v = u32::from_str_radix(hex, 16).ok()?;
    Some([(v >> 16) as u8, (v >> 8) as u8, v as u8])
}

fn check_text(text: &str, field: impl FnOnce() -> String) -> Result<(), SpecError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(SpecError::new(
            "too_long",
            field(),
            format!("at most {MAX_TEXT_CHARS} characters, got {chars}"),
        ));
    }
    if let Some(c) = text
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(SpecError::new(
            "invalid_text",
            field(),
            format!(
                "may not hold the control character U+{:04X}; use \\n for line breaks",
                c as u32
            ),
        ));
    }
    Ok(())
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        s.chars().take(max).collect::<String>() + "…"
    }
}

fn display_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> Value {
        json!({
            "output": { "width": 1280, "height": 720, "fps": 30, "format": "mp4" },
            "scenes": [
                { "duration": 3.0,
                  "background": { "color": "#0b1d3a" },
                  "texts": [ { "text": "Hello", "x": 0.5, "y": 0.4, "size": 0.08, "color": "#ffffff" } ],
                  "transition": { "kind": "fade", "duration": 0.5 } }
            ],
            "priority": 5,
            "metadata": { "campaign": "spring" }
        })
    }

    fn err_of(v: Value) -> SpecError {
        JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap_err()
    }

    /// `v` with the value at a JSON pointer replaced (or added, for an object member).
    fn with(mut v: Value, pointer: &str, new: Value) -> Value {
        let mut at = &mut v;
        for token in pointer.trim_start_matches('/').split('/') {
            at = match token.parse::<usize>() {
                Ok(i) if at.is_array() => &mut at[i],
                _ => &mut at[token],
            };
        }
        *at = new;
        v
    }

    #[test]
    fn the_design_example_is_valid() {
        let spec = JobSpec::from_json(&serde_json::to_vec(&valid()).unwrap()).unwrap();
        assert_eq!(spec.output.width, 1280);
        assert_eq!(spec.total_duration(), 3.0);
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let spec = JobSpec::from_json(
            br##"{"output":{"width":64,"height":64,"fps":10},"scenes":[{"duration":1,"background":{"color":"#000000"},"texts":[{"text":"a"}]}]}"##,
        )
        .unwrap();
        assert_eq!(spec.priority, 5);
        assert_eq!(spec.scenes[0].texts[0].color, "#ffffff");
        assert_eq!(spec.scenes[0].texts[0].size, 0.08);
        assert_eq!(spec.output.format, OutputFormat::Mp4);
    }

    #[test]
    fn malformed_json_is_named_as_such() {
        let e = JobSpec::from_json(b"{\"output\": ").unwrap_err();
        assert_eq!(e.code, "malformed_json");
    }

    #[test]
    fn unknown_fields_are_rejected_with_their_path() {
        let e = err_of(with(valid(), "/scenes/0/texts/0/font", json!("Comic Sans")));
        assert_eq!(e.field, "scenes[0].texts[0].font");
        assert!(e.message.contains("unknown field `font`"), "{}", e.message);
        let e = err_of(with(valid(), "/extra", json!(1)));
        assert!(e.message.contains("unknown field `extra`"), "{}", e.message);
    }

    #[test]
    fn missing_fields_are_named() {
        let mut v = valid();
        v["scenes"][0].as_object_mut().unwrap().remove("duration");
        let e = err_of(v);
        assert_eq!(e.field, "scenes[0]");
        assert!(
            e.message.contains("missing field `duration`"),
            "{}",
            e.message
        );
    }

    #[test]
    fn wrong_types_are_named_with_their_path() {
        let e = err_of(with(valid(), "/output/fps", json!("thirty")));
        assert_eq!(e.field, "output.fps");
        assert_eq!(e.code, "invalid_field");
    }

    /// The validator's path of the value at a JSON pointer: `/scenes/0/x` is `scenes[0].x`.
    fn path_of(pointer: &str) -> String {
        let mut path = String::new();
        for token in pointer.trim_start_matches('/').split('/') {
            match token.parse::<usize>() {
                Ok(i) => path.push_str(&format!("[{i}]")),
                Err(_) if path.is_empty() => path.push_str(token),
                Err(_) => path.push_str(&format!(".{token}")),
            }
        }
        path
    }

    #[test]
    fn every_range_rule_names_its_field() {
        // Each value breaks a rule of the field it replaces, and the error names that field.
        let own_field: Vec<(&str, Value)> = vec![
            ("/output/width", json!(15)),
            ("/output/width", json!(3842)),
            ("/output/width", json!(1281)),
            ("/output/height", json!(0)),
            ("/output/height", json!(-720)),
            ("/output/fps", json!(0)),
            ("/output/fps", json!(61)),
            ("/scenes/0/duration", json!(0)),
            ("/scenes/0/duration", json!(-1.5)),
            ("/scenes/0/background/color", json!("red")),
            ("/scenes/0/background/color", json!("#12345g")),
            ("/scenes/0/texts/0/x", json!(1.01)),
            ("/scenes/0/texts/0/y", json!(-0.1)),
            ("/scenes/0/texts/0/size", json!(0)),
            ("/scenes/0/texts/0/color", json!("#fff")),
            ("/scenes/0/texts/0/text", json!("x".repeat(501))),
            ("/scenes/0/texts/0/text", json!("a\u{0}b")),
            ("/scenes/0/transition/duration", json!(3.5)),
            ("/scenes/0/transition/kind", json!("crossfade")),
            ("/priority", json!(10)),
            ("/priority", json!(-1)),
            ("/metadata", json!({ "big": "x".repeat(4100) })),
        ];
        let cases = own_field
            .into_iter()
            .map(|(pointer, value)| (pointer, value, path_of(pointer)))
            // A scene too long makes the whole video too long.
            .chain([("/scenes/0/duration", json!(601), "scenes".to_owned())]);
        for (pointer, value, field) in cases {
            let e = err_of(with(valid(), pointer, value.clone()));
            assert_eq!(e.field, field, "{pointer} = {value}: {e}");
        }
    }

    #[test]
    fn scene_and_text_counts_are_limited() {
        let scene = valid()["scenes"][0].clone();
        let e = err_of(with(
            valid(),
            "/scenes",
            Value::Array(vec![scene.clone(); 201]),
        ));
        assert_eq!((e.field.as_str(), e.code), ("scenes", "too_many"));
        let e = err_of(with(valid(), "/scenes", json!([])));
        assert_eq!(e.field, "scenes");
        let text = scene["texts"][0].clone();
        let e = err_of(with(
            valid(),
            "/scenes/0/texts",
            Value::Array(vec![text; 11]),
        ));
        assert_eq!(e.field, "scenes[0].texts");
    }

    #[test]
    fn text_is_kept_byte_for_byte() {
        let hostile = "'; drawtext=textfile=/etc/passwd:x=0 %{localtime} \\\" [v0] \n עברית 🎬";
        let v = with(valid(), "/scenes/0/texts/0/text", json!(hostile));
        let spec = JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(spec.scenes[0].texts[0].text, hostile);
        let back: JobSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }

    #[test]
    fn crossfades_shorten_the_video() {
        let v = json!({
            "output": { "width": 64, "height": 64, "fps": 10 },
            "scenes": [
                { "duration": 2, "background": { "color": "#000000" },
                  "transition": { "kind": "crossfade", "duration": 0.5 } },
                { "duration": 2, "background": { "color": "#ffffff" } }
            ]
        });
        let spec = JobSpec::from_json(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(spec.total_duration(), 3.5);
    }

    #[test]
    fn asset_ids_must_have_our_shape() {
        let e = err_of(with(
            valid(),
            "/scenes/0/background",
            json!({ "image": "../../etc/passwd" }),
        ));
        assert_eq!(e.field, "scenes[0].background.image");
    }
}
