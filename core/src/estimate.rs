//! Expected render work of a spec, in work units: one unit is one second of 1280x720 video at
//! 30 fps. The scaler turns units into seconds with the realtime factor agents measure, so the
//! estimate only has to be proportional, not calibrated.

use crate::spec::{Background, JobSpec};

/// Pixels per second of the reference: 1280 x 720 at 30 fps.
const REFERENCE_RATE: f64 = 1280.0 * 720.0 * 30.0;
/// Fixed cost per job in units (process start, probe, upload), about half a second of work.
const FIXED_UNITS: f64 = 0.5;
/// A video background is decoded and scaled as well as encoded: it costs about this much more.
const VIDEO_BACKGROUND_FACTOR: f64 = 1.6;

/// Work units of `spec`.
pub fn work_units(spec: &JobSpec) -> f64 {
    let rate = (spec.output.width * spec.output.height * spec.output.fps) as f64 / REFERENCE_RATE;
    let frames: f64 = spec
        .scenes
        .iter()
        .map(|s| {
            let factor = match s.background {
                Background::Video(_) => VIDEO_BACKGROUND_FACTOR,
                _ => 1.0,
            };
            s.duration * factor
        })
        .sum();
    FIXED_UNITS + frames * rate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_scales_with_pixels_and_duration() {
        let spec = |w: i64, h: i64, d: f64| {
            JobSpec::from_json(
                format!(
                    r##"{{"output":{{"width":{w},"height":{h},"fps":30}},"scenes":[{{"duration":{d},"background":{{"color":"#000000"}}}}]}}"##
                )
                .as_bytes(),
            )
            .unwrap()
        };
        let a = work_units(&spec(1280, 720, 10.0));
        let b = work_units(&spec(1920, 1080, 10.0));
        let c = work_units(&spec(1280, 720, 20.0));
        assert!((a - 10.5).abs() < 1e-9);
        assert!((b - (0.5 + 22.5)).abs() < 1e-9);
        assert!((c - 20.5).abs() < 1e-9);
    }
}
