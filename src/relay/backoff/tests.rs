use super::*;

fn schedule() -> Backoff {
    Backoff::new(Duration::from_millis(300), Duration::from_secs(30), 0.2)
}

#[test]
fn waits_start_at_300_ms_double_and_stop_at_30_s() {
    let waits: Vec<u128> = (1..=10)
        .map(|n| schedule().delay_at(n, 0.0).as_millis())
        .collect();

    assert_eq!(
        waits,
        [
            300, 600, 1200, 2400, 4800, 9600, 19_200, 30_000, 30_000, 30_000
        ]
    );
    assert_eq!(schedule().delay_at(u32::MAX, 0.0), Duration::from_secs(30));
}

#[test]
fn jitter_spreads_each_wait_by_its_fraction_but_never_past_the_cap() {
    assert_eq!(schedule().delay_at(1, -1.0), Duration::from_millis(240));
    assert_eq!(schedule().delay_at(1, 1.0), Duration::from_millis(360));
    assert_eq!(schedule().delay_at(9, 1.0), Duration::from_secs(30));
    for _ in 0..1000 {
        let wait = schedule().delay(2);
        assert!((480..=720).contains(&wait.as_millis()), "{wait:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pause_lasts_its_backoff_and_grows_while_failures_repeat() {
    let mut pause = Pause::new(Backoff::new(
        Duration::from_millis(300),
        Duration::from_secs(30),
        0.0,
    ));
    let start = Instant::now();

    let first = pause.begin();
    assert_eq!(pause.begin(), first, "a running pause is not extended");
    tokio::time::sleep_until(first).await;
    pause.end();
    let second = pause.begin();

    assert_eq!(first - start, Duration::from_millis(300));
    assert_eq!(second - first, Duration::from_millis(600));
    assert!(pause.is_paused());
}

#[tokio::test(start_paused = true)]
async fn a_success_makes_the_next_pause_short_again() {
    let mut pause = Pause::new(Backoff::new(
        Duration::from_millis(300),
        Duration::from_secs(30),
        0.0,
    ));
    for _ in 0..5 {
        let until = pause.begin();
        tokio::time::sleep_until(until).await;
        pause.end();
    }
    pause.reset();

    let until = pause.begin();

    assert_eq!(until - Instant::now(), Duration::from_millis(300));
}
