{{
    config(
        materialized='incremental',
        partition_by=['cutoff_date'],
        post_hook="{{ drop_cutoffs_not_in(ref('int_cutoffs')) }}",
    )
}}

{%- set lookback = var('lookback_days') -%}
{%- if lookback < 28 -%}
    {{ exceptions.raise_compiler_error(
        "var lookback_days is " ~ lookback ~ ": the 28-day windows need "
        ~ "at least 28"
    ) }}
{%- endif -%}

{%- set measures = [
    'count_sessions', 'count_songs', 'listening_seconds', 'count_thumbs_up',
    'count_thumbs_down', 'count_adverts', 'count_errors', 'count_help_visits',
    'count_settings_visits', 'count_downgrade_visits', 'count_friends_added',
    'count_playlist_adds',
] -%}
{%- set new_days = dates_with_new_batches(
    ref('int_event_dates'), 'event_date', 'batch_id'
) -%}
{%- set newest_batch_id = newest_batch(ref('int_event_dates')) -%}
{#- Activity on a day reaches every later cutoff (recency, eligibility). -#}
{%- set cutoffs_to_build = cutoffs_to_refresh(ref('int_cutoffs'), new_days) %}

with

cutoffs as (

    select cutoff_date
    from {{ ref('int_cutoffs') }}
    where {{ in_dates('cutoff_date', cutoffs_to_build) }}

),

daily as (

    select * from {{ ref('int_customers__daily_activity') }}
    {% if cutoffs_to_build -%}
    where activity_date >= date_sub(
        date'{{ cutoffs_to_build | min }}', {{ lookback }}
    )
    {%- else -%}
    where false
    {%- endif %}

),

history as (

    -- Each day of activity paired with the cutoffs up to `lookback_days`
    -- after it: strictly before the cutoff, never on or after it.
    select
        cutoffs.cutoff_date,
        daily.*,
        datediff(
            cutoffs.cutoff_date, daily.activity_date
        ) as days_before_cutoff

    from daily
    inner join cutoffs
        on
            daily.activity_date < cutoffs.cutoff_date
            and daily.activity_date
            >= date_sub(cutoffs.cutoff_date, {{ lookback }})

),

windows as (

    select
        customer_id,
        cutoff_date,
        max(activity_date) as last_activity_date,

        ----------  the customer as last seen before the cutoff
        max_by(level_at_day_end, activity_date) as level_at_cutoff,
        max_by(state, activity_date) as state,
        max_by(device_type, activity_date) as device_type,
        max_by(os_family, activity_date) as os_family,
        max_by(browser, activity_date) as browser,

        ----------  sums over days 1..n before the cutoff
        {% for measure in measures %}
        {% for days in [7, 14, 28] %}
        {{ window_sum(measure, 1, days) }} as {{ measure }}_{{ days }}d,
        {% endfor %}
        {% endfor %}
        {% for days in [7, 14, 28] %}
        {{ window_sum(1, 1, days) }} as count_active_days_{{ days }}d,
        size(
            array_distinct(
                flatten(
                    collect_list(
                        case
                            when days_before_cutoff <= {{ days }}
                                then artist_hashes
                        end
                    )
                )
            )
        ) as count_distinct_artists_{{ days }}d,
        {% endfor %}
        {{ window_sum("cast(level_at_day_end = 'paid' as int)", 1, 28) }}
            as count_paid_days_28d,
        {{ window_sum('count_songs', 8, 28) }} as count_songs_prev_21d,
        {{ window_sum('count_sessions', 8, 28) }} as count_sessions_prev_21d,

        '{{ newest_batch_id }}' as batch_id

    from history
    group by customer_id, cutoff_date

)

select * from windows
