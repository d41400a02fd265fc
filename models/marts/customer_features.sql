{{
    config(
        materialized='incremental',
        partition_by=['cutoff_date'],
        post_hook="{{ drop_cutoffs_not_in(ref('int_cutoffs')) }}",
    )
}}

{%- set lookback = var('lookback_days') -%}
{%- set new_days = dates_with_new_batches(
    ref('int_event_dates'), 'event_date', 'batch_id'
) -%}
{%- set newest_batch_id = newest_batch(ref('int_event_dates')) -%}
{%- set cutoffs_to_build = cutoffs_to_refresh(ref('int_cutoffs'), new_days) %}

with

cutoffs as (

    select cutoff_date
    from {{ ref('int_cutoffs') }}
    where {{ in_dates('cutoff_date', cutoffs_to_build) }}

),

customers as (

    select * from {{ ref('int_customers') }}

),

windows as (

    select * from {{ ref('int_customers__activity_windows') }}
    where {{ in_dates('cutoff_date', cutoffs_to_build) }}

),

level_changes as (

    select * from {{ ref('int_subscription_changes') }}
    where change_kind in ('upgrade', 'downgrade')

),

eligible as (

    -- At the cutoff: seen before it and not cancelled before it. Whether
    -- the customer cancels later is the label's business, not the
    -- features'.
    select
        customers.customer_id,
        cutoffs.cutoff_date,
        customers.registered_at,
        customers.first_event_at

    from customers
    inner join cutoffs
        on customers.first_event_at < cast(cutoffs.cutoff_date as timestamp)
    where
        customers.cancelled_at is null
        or customers.cancelled_at >= cast(cutoffs.cutoff_date as timestamp)

),

level_history as (

    select
        eligible.customer_id,
        eligible.cutoff_date,
        count(*) as count_level_changes,
        max(level_changes.changed_at) as last_level_change_at

    from eligible
    inner join level_changes
        on
            eligible.customer_id = level_changes.customer_id
            and level_changes.changed_at
            < cast(eligible.cutoff_date as timestamp)
    group by eligible.customer_id, eligible.cutoff_date

),

joined as (

    -- Joined `using` the keys, so `*` returns each key column once.
    -- noqa: disable=RF02,ST07
    select
        *,
        greatest(
            datediff(
                cutoff_date,
                to_date(coalesce(registered_at, first_event_at))
            ),
            0
        ) as tenure_days

    from eligible
    left join windows using (customer_id, cutoff_date)
    left join level_history using (customer_id, cutoff_date)
    -- noqa: enable=RF02,ST07

),

features as (

    select
        concat(customer_id, '|', cutoff_date) as customer_cutoff_id,
        customer_id,

        ----------  recency and tenure
        -- No activity inside the lookback: one day more than it.
        coalesce(
            datediff(cutoff_date, last_activity_date), {{ lookback + 1 }}
        ) as days_since_last_activity,
        tenure_days,

        ----------  frequency and volume
        {% for measure in [
            'count_sessions', 'count_songs', 'listening_seconds',
            'count_distinct_artists', 'count_active_days',
        ] %}
        {% for days in [7, 14, 28] %}
        coalesce({{ measure }}_{{ days }}d, 0) as {{ measure }}_{{ days }}d,
        {% endfor %}
        {% endfor %}

        ----------  trend: last 7 days against the weekly mean of the 21
        ----------  before them; below 1 means activity fell
        cast(
            (coalesce(count_songs_7d, 0) + 1.0)
            / (coalesce(count_songs_prev_21d, 0) / 3.0 + 1.0) as double
        ) as songs_7d_vs_prev_21d_ratio,
        cast(
            (coalesce(count_sessions_7d, 0) + 1.0)
            / (coalesce(count_sessions_prev_21d, 0) / 3.0 + 1.0) as double
        ) as sessions_7d_vs_prev_21d_ratio,

        ----------  content feedback
        coalesce(count_thumbs_up_28d, 0) as count_thumbs_up_28d,
        coalesce(count_thumbs_down_28d, 0) as count_thumbs_down_28d,
        coalesce(count_thumbs_up_28d / nullif(count_songs_28d, 0), 0.0)
            as thumbs_up_per_song_28d,
        coalesce(count_thumbs_down_28d / nullif(count_songs_28d, 0), 0.0)
            as thumbs_down_per_song_28d,
        coalesce(
            count_thumbs_down_28d
            / nullif(count_thumbs_up_28d + count_thumbs_down_28d, 0),
            0.0
        ) as thumbs_down_share_28d,

        ----------  social
        coalesce(count_friends_added_28d, 0) as count_friends_added_28d,
        coalesce(count_playlist_adds_28d, 0) as count_playlist_adds_28d,
        coalesce(count_playlist_adds_28d / nullif(count_songs_28d, 0), 0.0)
            as playlist_adds_per_song_28d,

        ----------  friction
        coalesce(count_errors_28d, 0) as count_errors_28d,
        coalesce(count_help_visits_28d, 0) as count_help_visits_28d,
        coalesce(count_settings_visits_28d, 0) as count_settings_visits_28d,
        coalesce(count_downgrade_visits_28d, 0)
            as count_downgrade_visits_28d,
        coalesce(count_adverts_28d, 0) as count_adverts_28d,
        -- Adverts roll only for free-tier listening.
        coalesce(count_adverts_28d / nullif(count_songs_28d, 0), 0.0)
            as adverts_per_song_28d,

        ----------  subscription
        coalesce(level_at_cutoff = 'paid', false) as is_paid,
        coalesce(
            count_paid_days_28d / nullif(count_active_days_28d, 0), 0.0
        ) as paid_days_share_28d,
        coalesce(count_level_changes, 0) as count_level_changes,
        -- Never changed: the level has held since registration.
        coalesce(
            datediff(cutoff_date, to_date(last_level_change_at)), tenure_days
        ) as days_since_last_level_change,

        ----------  device and place, as last seen before the cutoff
        coalesce(device_type, 'unknown') as device_type,
        coalesce(os_family, 'unknown') as os_family,
        coalesce(browser, 'unknown') as browser,
        coalesce(state, 'unknown') as state,

        '{{ newest_batch_id }}' as batch_id,
        cutoff_date

    from joined

)

select * from features
