with

event_dates as (

    select * from {{ ref('int_event_dates') }}

),

bounds as (

    select
        min(event_date) as first_date,
        max(event_date) as last_date,
        date_add(max(event_date), 1) as scoring_date
    from event_dates

),

weekly as (

    select
        explode(
            sequence(
                least(
                    date_add(first_date, {{ var('min_history_days') }}),
                    scoring_date
                ),
                scoring_date,
                make_interval(0, 0, 0, {{ var('cutoff_every_days') }})
            )
        ) as cutoff_date
    from bounds

),

all_cutoffs as (

    select cutoff_date from weekly
    union
    select scoring_date as cutoff_date from bounds

),

cutoffs as (

    select
        all_cutoffs.cutoff_date,
        date_add(
            all_cutoffs.cutoff_date, {{ var('horizon_days') }}
        ) as horizon_end_date,
        -- The horizon [cutoff, cutoff + horizon) must lie inside the data.
        date_add(all_cutoffs.cutoff_date, {{ var('horizon_days') }})
        <= bounds.scoring_date as is_labelled,
        all_cutoffs.cutoff_date = bounds.scoring_date as is_scoring_cutoff

    from all_cutoffs
    cross join bounds

)

select * from cutoffs
