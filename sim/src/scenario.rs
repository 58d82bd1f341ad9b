//! The built-in scenarios and the boot-time distributions, all drawn from a seeded generator.

use std::f64::consts::PI;
use std::fmt;
use std::str::FromStr;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::trace::{Job, ms};

/// A built-in traffic pattern. Every one renders jobs of a lognormal duration (median 60 s,
/// sigma 0.5, mean about 68 s) except `longtail`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// 4 h of Poisson arrivals at 0.2 jobs/s.
    Steady,
    /// 24 h whose rate follows the day: `r(t) = r̄·(1 − 0.8·cos(2πt/24h))`, r̄ = 100,000 jobs/day
    /// (trough 0.2·r̄ at midnight, peak 1.8·r̄ at noon).
    Diurnal,
    /// A broadcast premiere: 2 h at 0.1 jobs/s, with 20× that rate from minute 30 to 35.
    Spike,
    /// Bursts with silence between: 10 min at 0.5 jobs/s, then 20 min of nothing, for 4 h.
    Onoff,
    /// 4 h at 0.1 jobs/s with Pareto durations (α 1.5, scale 20 s: mean 60 s), capped at 4 h.
    Longtail,
}

impl Scenario {
    pub const ALL: [Scenario; 5] = [
        Scenario::Steady,
        Scenario::Diurnal,
        Scenario::Spike,
        Scenario::Onoff,
        Scenario::Longtail,
    ];

    /// Seconds of traffic.
    pub fn duration_secs(self) -> f64 {
        match self {
            Scenario::Diurnal => 86_400.0,
            Scenario::Spike => 7_200.0,
            _ => 14_400.0,
        }
    }

    /// The arrival rate at `t` seconds, jobs per second, and its maximum (for thinning).
    fn rate(self, t: f64) -> f64 {
        match self {
            Scenario::Steady => 0.2,
            Scenario::Diurnal => {
                100_000.0 / 86_400.0 * (1.0 - 0.8 * (2.0 * PI * t / 86_400.0).cos())
            }
            Scenario::Spike if (1_800.0..2_100.0).contains(&t) => 2.0,
            Scenario::Spike => 0.1,
            Scenario::Onoff if t % 1_800.0 < 600.0 => 0.5,
            Scenario::Onoff => 0.0,
            Scenario::Longtail => 0.1,
        }
    }

    fn max_rate(self) -> f64 {
        match self {
            Scenario::Steady => 0.2,
            Scenario::Diurnal => 1.8 * 100_000.0 / 86_400.0,
            Scenario::Spike => 2.0,
            Scenario::Onoff => 0.5,
            Scenario::Longtail => 0.1,
        }
    }

    /// Generates the jobs: a non-homogeneous Poisson process (thinning) at `rate_scale` times the
    /// scenario's rate. The same seed always gives the same jobs.
    pub fn jobs(self, seed: u64, rate_scale: f64) -> Vec<Job> {
        let mut rng = StdRng::seed_from_u64(seed);
        let end = self.duration_secs();
        let max = self.max_rate() * rate_scale;
        let mut jobs = Vec::new();
        if max <= 0.0 {
            return jobs;
        }
        let mut t = 0.0;
        loop {
            t += exponential(&mut rng, max);
            if t >= end {
                break;
            }
            // Both draws happen for every candidate, so accepted jobs do not shift the stream.
            let keep = rng.random::<f64>() * max < self.rate(t) * rate_scale;
            let render = match self {
                Scenario::Longtail => pareto(&mut rng, 20.0, 1.5).min(14_400.0),
                _ => lognormal(&mut rng, 60.0, 0.5),
            };
            if keep {
                jobs.push(Job {
                    submitted: ms(t),
                    render: ms(render).max(1000),
                    priority: 0,
                });
            }
        }
        jobs
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scenario::Steady => "steady",
            Scenario::Diurnal => "diurnal",
            Scenario::Spike => "spike",
            Scenario::Onoff => "onoff",
            Scenario::Longtail => "longtail",
        })
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|x| x.to_string() == s)
            .ok_or_else(|| {
                format!(
                    "unknown scenario {s:?}; expected steady, diurnal, spike, onoff or longtail"
                )
            })
    }
}

/// Seconds from launch to a ready worker.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum BootTime {
    Fixed {
        secs: f64,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        min: f64,
        max: f64,
    },
    /// Normal, cut at 0.
    Normal {
        mean: f64,
        sd: f64,
    },
    /// Lognormal with this median and sigma (of the log).
    Lognormal {
        median: f64,
        sigma: f64,
    },
}

impl BootTime {
    pub fn sample(&self, rng: &mut StdRng) -> f64 {
        match *self {
            BootTime::Fixed { secs } => secs,
            BootTime::Uniform { min, max } => min + (max - min) * rng.random::<f64>(),
            BootTime::Normal { mean, sd } => (mean + sd * standard_normal(rng)).max(0.0),
            BootTime::Lognormal { median, sigma } => lognormal(rng, median, sigma),
        }
    }

    /// The mean boot time, seconds (the cut normal's is taken as its mean).
    pub fn mean(&self) -> f64 {
        match *self {
            BootTime::Fixed { secs } => secs,
            BootTime::Uniform { min, max } => (min + max) / 2.0,
            BootTime::Normal { mean, .. } => mean,
            BootTime::Lognormal { median, sigma } => median * (sigma * sigma / 2.0).exp(),
        }
    }

    /// The shortest boot possible, seconds.
    pub fn min(&self) -> f64 {
        match *self {
            BootTime::Fixed { secs } => secs,
            BootTime::Uniform { min, .. } => min,
            BootTime::Normal { .. } | BootTime::Lognormal { .. } => 0.0,
        }
    }
}

impl fmt::Display for BootTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            BootTime::Fixed { secs } => write!(f, "{secs}"),
            BootTime::Uniform { min, max } => write!(f, "uniform:{min}:{max}"),
            BootTime::Normal { mean, sd } => write!(f, "normal:{mean}:{sd}"),
            BootTime::Lognormal { median, sigma } => write!(f, "lognormal:{median}:{sigma}"),
        }
    }
}

impl FromStr for BootTime {
    type Err = String;
    /// `30`, `uniform:20:40`, `normal:30:5` or `lognormal:30:0.3` (seconds).
    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let num = |v: &str| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x >= 0.0)
                .ok_or_else(|| format!("{v:?} in boot time {s:?} is not a number of seconds ≥ 0"))
        };
        let boot = match parts.as_slice() {
            [secs] => BootTime::Fixed { secs: num(secs)? },
            ["fixed", secs] => BootTime::Fixed { secs: num(secs)? },
            ["uniform", a, b] => BootTime::Uniform {
                min: num(a)?,
                max: num(b)?,
            },
            ["normal", m, sd] => BootTime::Normal {
                mean: num(m)?,
                sd: num(sd)?,
            },
            ["lognormal", m, sg] => BootTime::Lognormal {
                median: num(m)?,
                sigma: num(sg)?,
            },
            _ => {
                return Err(format!(
                    "boot time {s:?}: expected SECS, uniform:MIN:MAX, normal:MEAN:SD or lognormal:MEDIAN:SIGMA"
                ));
            }
        };
        if let BootTime::Uniform { min, max } = boot
            && max < min
        {
            return Err(format!("boot time {s:?}: the maximum is below the minimum"));
        }
        Ok(boot)
    }
}

fn exponential(rng: &mut StdRng, rate: f64) -> f64 {
    -(1.0 - rng.random::<f64>()).ln() / rate
}

fn standard_normal(rng: &mut StdRng) -> f64 {
    // Box–Muller; one of the pair is enough.
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}

fn lognormal(rng: &mut StdRng, median: f64, sigma: f64) -> f64 {
    median * (sigma * standard_normal(rng)).exp()
}

fn pareto(rng: &mut StdRng, scale: f64, alpha: f64) -> f64 {
    scale / (1.0 - rng.random::<f64>()).powf(1.0 / alpha)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenarios_are_deterministic_and_shaped_as_documented() {
        assert_eq!(Scenario::Spike.jobs(7, 1.0), Scenario::Spike.jobs(7, 1.0));
        assert_ne!(Scenario::Spike.jobs(7, 1.0), Scenario::Spike.jobs(8, 1.0));
        let spike = Scenario::Spike.jobs(1, 1.0);
        let in_spike = spike
            .iter()
            .filter(|j| (1_800_000..2_100_000).contains(&j.submitted))
            .count();
        // 600 expected in the 5 minutes, 690 in the other 115.
        assert!((500..700).contains(&in_spike), "{in_spike}");
        assert!(
            (550..850).contains(&(spike.len() - in_spike)),
            "{}",
            spike.len()
        );
        let day = Scenario::Diurnal.jobs(1, 1.0);
        assert!((98_500..101_500).contains(&day.len()), "{}", day.len());
        let onoff = Scenario::Onoff.jobs(1, 1.0);
        assert!(onoff.iter().all(|j| j.submitted % 1_800_000 < 600_000));
        let mean = |v: &[Job]| v.iter().map(|j| j.render as f64).sum::<f64>() / v.len() as f64;
        assert!((60_000.0..76_000.0).contains(&mean(&day)), "{}", mean(&day));
    }

    #[test]
    fn boot_times_parse() {
        assert_eq!("30".parse(), Ok(BootTime::Fixed { secs: 30.0 }));
        assert_eq!(
            "uniform:20:40".parse(),
            Ok(BootTime::Uniform {
                min: 20.0,
                max: 40.0
            })
        );
        assert!("uniform:40:20".parse::<BootTime>().is_err());
        assert!("normal:30".parse::<BootTime>().is_err());
        assert!("-3".parse::<BootTime>().is_err());
        assert_eq!(
            "lognormal:30:0.3".parse::<BootTime>().unwrap().to_string(),
            "lognormal:30:0.3"
        );
    }
}
