//! The report's plots, as SVG (plotters' SVG backend writes text as text, so no
//! font files are needed): throughput and latency percentiles against offered
//! load, from the open-loop runs with the invoice.

use std::path::Path;

use plotters::prelude::*;

use super::{Api, Pace, Payload, RunResult};

/// Size of each plot, in pixels.
const SIZE: (u32, u32) = (860, 500);

type PlotResult = Result<(), Box<dyn std::error::Error>>;

/// A percentile's name, how to read it from a run, and its colour's strength.
type Percentile = (&'static str, fn(&RunResult) -> f64, f64);

/// `(offered rate, run)` of the open-loop invoice runs with the middleware API,
/// sync or async, ordered by rate.
pub fn open_loop(runs: &[RunResult], respond_async: bool) -> Vec<(f64, &RunResult)> {
    let mut points: Vec<(f64, &RunResult)> = runs
        .iter()
        .filter(|run| {
            let s = &run.scenario;
            s.api == Api::Middleware
                && s.payload == Payload::Invoice
                && !s.idempotency
                && s.respond_async == respond_async
        })
        .filter_map(|run| match run.scenario.pace {
            Pace::Open { rate } => Some((rate, run)),
            Pace::Closed { .. } => None,
        })
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// Answered requests per second against offered requests per second.
pub fn throughput(runs: &[RunResult], path: &Path) -> PlotResult {
    let sync = open_loop(runs, false);
    let unsync = open_loop(runs, true);
    let top = sync
        .iter()
        .chain(&unsync)
        .map(|(rate, run)| rate.max(run.requests_per_second))
        .fold(1.0, f64::max)
        * 1.1;

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput against offered load (invoice)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..top, 0.0..top)?;
    chart
        .configure_mesh()
        .x_desc("offered load (requests/s)")
        .y_desc("answered (requests/s)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()?;

    let ideal = LineSeries::new([(0.0, 0.0), (top, top)], BLACK.mix(0.3));
    chart
        .draw_series(ideal)?
        .label("offered = answered")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.3)));
    // Sync is drawn wider and underneath, so that it shows where both coincide.
    let series = [
        ("sync (200)", &sync, BLUE, 5),
        ("async (202)", &unsync, RED, 2),
    ];
    for (label, points, color, width) in series {
        let xy: Vec<(f64, f64)> = points
            .iter()
            .map(|(rate, run)| (*rate, run.requests_per_second))
            .collect();
        draw_line(&mut chart, label, &xy, color.stroke_width(width))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// Latency percentiles (log scale) against offered requests per second.
pub fn latency(runs: &[RunResult], path: &Path) -> PlotResult {
    let sync = open_loop(runs, false);
    let unsync = open_loop(runs, true);
    let all = || sync.iter().chain(&unsync);
    let right = all().map(|(rate, _)| *rate).fold(1.0, f64::max) * 1.1;
    let top = all()
        .map(|(_, run)| run.latency_ms.p999)
        .fold(1.0, f64::max)
        * 2.0;
    let bottom = all()
        .map(|(_, run)| run.latency_ms.p50)
        .fold(f64::MAX, f64::min)
        .clamp(0.01, 1.0)
        / 2.0;

    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency against offered load (invoice)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(72)
        .build_cartesian_2d(0.0..right, (bottom..top).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered load (requests/s)")
        .y_desc("latency from due time (ms, log scale)")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v}"))
        .draw()?;

    let percentiles: [Percentile; 3] = [
        ("p50", |r| r.latency_ms.p50, 0.45),
        ("p99", |r| r.latency_ms.p99, 0.75),
        ("p99.9", |r| r.latency_ms.p999, 1.0),
    ];
    for (ack, points, color) in [("sync", &sync, BLUE), ("async", &unsync, RED)] {
        for (name, value, shade) in percentiles {
            let xy: Vec<(f64, f64)> = points
                .iter()
                .map(|(rate, run)| (*rate, value(run)))
                .collect();
            let style = color.mix(shade).stroke_width(2);
            draw_line(&mut chart, &format!("{ack} {name}"), &xy, style)?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}

/// One labelled line with a dot at each measured point.
fn draw_line<'a, C>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, C>,
    label: &str,
    points: &[(f64, f64)],
    style: ShapeStyle,
) -> PlotResult
where
    C: CoordTranslate<From = (f64, f64)>,
{
    chart
        .draw_series(LineSeries::new(points.iter().copied(), style))?
        .label(label)
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
    chart.draw_series(
        points
            .iter()
            .map(|&point| Circle::new(point, 3, style.filled())),
    )?;
    Ok(())
}
