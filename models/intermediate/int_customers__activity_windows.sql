{%- set measures = [
    'count_sessions', 'count_songs', 'listening_seconds', 'count_thumbs_up',
    'count_thumbs_down', 'count_adverts', 'count_errors', 'count_help_visits',
    'count_settings_visits', 'count_downgrade_visits', 'count_friends_added',
    'count_playlist_adds',
] -%}

with

daily as (

    select * from {{ ref('int_customers__daily_activity') }}

),

cutoffs as (

    select * from {{ ref('int_cutoffs') }}

),

history as (

    -- Each day of activity paired with every cutoff after it: strictly
    -- before the cutoff, never on or after it.
    select
        cutoffs.cutoff_date,
        daily.*,
        datediff(
            cutoffs.cutoff_date, daily.activity_date
        ) as days_before_cutoff

    from daily
    inner join cutoffs
        on daily.activity_date < cutoffs.cutoff_date

),

windows as (

    select
        customer_id,
        cutoff_date,
        min(activity_date) as first_activity_date,
        max(activity_date) as last_activity_date,
        max_by(level_at_day_end, activity_date) as level_at_cutoff,
        {% for measure in measures %}
        {{ window_sum(measure, 1, 7) }} as {{ measure }}_7d,
        {{ window_sum(measure, 1, 28) }} as {{ measure }}_28d,
        {{ window_sum(measure, 29, 56) }} as {{ measure }}_prev_28d,
        {% endfor %}
        {{ window_sum(1, 1, 28) }} as count_active_days_28d,
        {{ window_sum("cast(level_at_day_end = 'paid' as int)", 1, 28) }}
            as count_paid_days_28d,
        {{ window_sum('count_songs', 8, 28) }} as count_songs_prev_21d

    from history
    group by customer_id, cutoff_date

)

select * from windows
