//! Line charts of metric history, laid out on the server and drawn by the page as SVG: one
//! polyline per run, a dot per point (carrying its step and value), axes with tick labels.

/// The drawing area, in SVG units.
const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 280.0;
/// Room for the axes' labels.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 32.0;
const TOP: f64 = 12.0;
const RIGHT: f64 = 16.0;
/// Tick marks per axis.
const TICKS: usize = 5;
/// Distinct series colours in the style sheet (`.series-0` ...); more runs reuse them.
const COLOURS: usize = 8;

/// One point of a series, placed.
#[derive(Debug, Clone, PartialEq)]
pub struct Dot {
    pub x: String,
    pub y: String,
    pub step: i64,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub class: String,
    pub points: String,
    pub dots: Vec<Dot>,
}

#[derive(Debug, Clone)]
pub struct Tick {
    pub at: String,
    pub label: String,
}

/// A chart ready for the template.
#[derive(Debug, Clone)]
pub struct Chart {
    pub metric: String,
    pub width: f64,
    pub height: f64,
    pub left: f64,
    pub right_edge: f64,
    pub top: f64,
    pub base: f64,
    pub series: Vec<Series>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
}

fn coordinate(v: f64) -> String {
    format!("{v:.1}")
}

/// Short enough for an axis: integers as such, others to four significant digits.
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        let text = format!("{v:.4}");
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

/// A range that is never empty (a single step or a constant metric still gets an axis).
fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(v), hi.max(v)));
    match (lo.is_finite(), lo == hi) {
        (false, _) => (0.0, 1.0),
        (true, true) => (lo - 1.0, hi + 1.0),
        (true, false) => (lo, hi),
    }
}

/// Steps are whole numbers: the ticks of the step axis are too, each once.
fn step_ticks(ticks: Vec<Tick>, place: &dyn Fn(f64) -> f64) -> Vec<Tick> {
    let mut steps: Vec<i64> = ticks.iter().filter_map(|t| t.at.parse::<f64>().ok()).map(|v| v.round() as i64).collect();
    steps.dedup();
    steps.into_iter().map(|s| Tick { at: coordinate(place(s as f64)), label: s.to_string() }).collect()
}

/// The chart of `metric` for `runs`, each a label and its points `(step, value)` (sorted here).
pub fn chart(metric: &str, runs: Vec<(String, Vec<(i64, f64)>)>) -> Chart {
    let finite = |runs: &[(String, Vec<(i64, f64)>)]| {
        runs.iter().flat_map(|(_, points)| points.iter().copied()).filter(|(_, v)| v.is_finite()).collect::<Vec<_>>()
    };
    let all = finite(&runs);
    let (x0, x1) = span(all.iter().map(|(s, _)| *s as f64));
    let (y0, y1) = span(all.iter().map(|(_, v)| *v));
    let (right_edge, base) = (WIDTH - RIGHT, HEIGHT - BOTTOM);
    let x = |s: f64| LEFT + (s - x0) / (x1 - x0) * (right_edge - LEFT);
    let y = |v: f64| base - (v - y0) / (y1 - y0) * (base - TOP);
    let series = runs
        .into_iter()
        .enumerate()
        .map(|(i, (label, mut points))| {
            points.retain(|(_, v)| v.is_finite());
            points.sort_by_key(|(step, _)| *step);
            let dots: Vec<Dot> = points
                .iter()
                .map(|(step, value)| Dot { x: coordinate(x(*step as f64)), y: coordinate(y(*value)), step: *step, value: *value })
                .collect();
            let points = dots.iter().map(|d| format!("{},{}", d.x, d.y)).collect::<Vec<_>>().join(" ");
            Series { label, class: format!("series-{}", i % COLOURS), points, dots }
        })
        .collect();
    let ticks = |lo: f64, hi: f64, place: &dyn Fn(f64) -> f64| {
        (0..TICKS)
            .map(|i| {
                let v = lo + (hi - lo) * i as f64 / (TICKS - 1) as f64;
                Tick { at: coordinate(place(v)), label: number(v) }
            })
            .collect::<Vec<_>>()
    };
    Chart {
        metric: metric.to_owned(),
        width: WIDTH,
        height: HEIGHT,
        left: LEFT,
        right_edge,
        top: TOP,
        base,
        x_ticks: step_ticks(ticks(x0, x1, &|v| v), &x),
        y_ticks: ticks(y0, y1, &y),
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_placed_in_step_order_within_the_axes() {
        let c = chart("loss", vec![("run".into(), vec![(2, 0.5), (0, 1.0), (1, 0.75)])]);
        let dots = &c.series[0].dots;
        assert_eq!(dots.iter().map(|d| d.step).collect::<Vec<_>>(), [0, 1, 2]);
        assert_eq!(dots.iter().map(|d| d.value).collect::<Vec<_>>(), [1.0, 0.75, 0.5]);
        assert_eq!((dots[0].x.as_str(), dots[0].y.as_str()), ("64.0", "12.0"));
        assert_eq!((dots[2].x.as_str(), dots[2].y.as_str()), ("624.0", "248.0"));
        assert_eq!(c.series[0].points, "64.0,12.0 344.0,130.0 624.0,248.0");
        assert_eq!(c.y_ticks.first().unwrap().label, "0.5");
        assert_eq!(c.x_ticks.iter().map(|t| t.label.as_str()).collect::<Vec<_>>(), ["0", "1", "2"]);
    }

    #[test]
    fn a_single_point_and_non_finite_values_still_draw() {
        let c = chart("acc", vec![("a".into(), vec![(5, 3.0), (6, f64::NAN)]), ("b".into(), vec![])]);
        assert_eq!(c.series[0].dots.len(), 1);
        assert_eq!(c.series[1].class, "series-1");
        assert!(c.x_ticks.iter().all(|t| t.at.parse::<f64>().unwrap().is_finite()));
    }
}
