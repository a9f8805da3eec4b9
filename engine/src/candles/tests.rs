use super::*;

fn five(tf: Timeframe, times: &[i64]) -> Candles {
    let mut c = Candles::new(tf);
    for &t in times {
        c.push(t, 10.0, 11.0, 9.0, 10.5, 100.0);
    }
    c
}

#[test]
fn timeframes() {
    assert_eq!(Timeframe::parse("5m").unwrap(), Timeframe::M5);
    assert_eq!(Timeframe::parse(" 1H ").unwrap(), Timeframe::H1);
    assert!(matches!(
        Timeframe::parse("7m"),
        Err(CandleError::UnknownTimeframe(_))
    ));
    // 1970-01-05 was a Monday.
    assert!(Timeframe::W1.is_aligned(4 * 86_400_000));
    assert!(!Timeframe::W1.is_aligned(0));
    let json = serde_json::to_string(&Timeframe::H4).unwrap();
    assert_eq!(json, "\"4h\"");
    assert_eq!(
        serde_json::from_str::<Timeframe>(&json).unwrap(),
        Timeframe::H4
    );
}

#[test]
fn validation_errors_name_row_and_problem() {
    let m = 60_000;
    let mut c = five(Timeframe::M1, &[0, m, 2 * m]);
    assert!(c.validate().is_ok());
    c.high[1] = 10.0;
    let e = c.validate().unwrap_err();
    assert!(
        matches!(e, CandleError::HighBelowBody { row: 1, .. }),
        "{e}"
    );
    assert!(
        e.to_string().contains("row 1 (1970-01-01T00:01:00Z)"),
        "{e}"
    );
    c.high[1] = 11.0;
    c.low[2] = 10.6;
    assert!(matches!(
        c.validate(),
        Err(CandleError::LowAboveBody { row: 2, .. })
    ));
    c.low[2] = 9.0;
    c.volume[0] = -1.0;
    assert!(matches!(
        c.validate(),
        Err(CandleError::NegativeVolume { row: 0, .. })
    ));
    c.volume[0] = 1.0;
    c.close[0] = f64::NAN;
    assert!(matches!(
        c.validate(),
        Err(CandleError::NonFinite {
            row: 0,
            field: Field::Close,
            ..
        })
    ));
    c.close[0] = -1.0;
    assert!(matches!(
        c.validate(),
        Err(CandleError::NonPositivePrice { row: 0, .. })
    ));
    c.close[0] = 10.5;
    c.time[2] = m;
    assert!(matches!(
        c.validate(),
        Err(CandleError::NotIncreasing { row: 2, .. })
    ));
    c.time[2] = 2 * m + 1;
    assert!(matches!(
        c.validate(),
        Err(CandleError::Misaligned { row: 2, .. })
    ));
    c.open.pop();
    assert!(matches!(
        c.validate(),
        Err(CandleError::ColumnLength { .. })
    ));
}

#[test]
fn gaps_are_ranges() {
    let m = 60_000;
    let c = five(Timeframe::M1, &[0, m, 4 * m, 5 * m, 7 * m]);
    assert_eq!(
        c.gaps(),
        vec![
            Gap {
                from: 2 * m,
                to: 3 * m,
                missing: 2
            },
            Gap {
                from: 6 * m,
                to: 6 * m,
                missing: 1
            }
        ]
    );
}

#[test]
fn resample_aggregates() {
    let m = 60_000;
    let mut c = Candles::new(Timeframe::M1);
    c.push(0, 1.0, 2.0, 0.5, 1.5, 1.0);
    c.push(m, 1.5, 3.0, 1.0, 2.5, 2.0);
    c.push(5 * m, 2.5, 2.6, 2.4, 2.45, 3.0);
    let r = c.resample(Timeframe::M5).unwrap();
    assert_eq!(r.time, vec![0, 5 * m]);
    assert_eq!(r.open, vec![1.0, 2.5]);
    assert_eq!(r.high, vec![3.0, 2.6]);
    assert_eq!(r.low, vec![0.5, 2.4]);
    assert_eq!(r.close, vec![2.5, 2.45]);
    assert_eq!(r.volume, vec![3.0, 3.0]);
    assert!(r.validate().is_ok());
    assert!(c.resample(Timeframe::M1).is_ok());
    assert!(r.resample(Timeframe::M1).is_err());
}
