{{
    config(
        materialized='incremental',
        partition_by=['cutoff_date'],
        post_hook=(
            "{{ drop_cutoffs_not_in(ref('int_cutoffs'), 'is_labelled') }}"
        ),
    )
}}

{%- set new_days = dates_with_new_batches(
    ref('int_event_dates'), 'event_date', 'batch_id'
) -%}
{%- set newest_batch_id = newest_batch(ref('int_event_dates')) -%}
{#- A cancellation on a new day settles the labels of the cutoffs whose
    horizon holds that day; a cutoff becomes labelled once its horizon
    has passed. -#}
{%- set cutoffs_to_build = cutoffs_to_refresh(
    ref('int_cutoffs'), new_days,
    reach_back_days=var('horizon_days'), where='is_labelled',
) %}

with

features as (

    select
        customer_cutoff_id,
        customer_id,
        cutoff_date
    from {{ ref('customer_features') }}
    where {{ in_dates('cutoff_date', cutoffs_to_build) }}

),

customers as (

    select * from {{ ref('int_customers') }}

),

cutoffs as (

    select * from {{ ref('int_cutoffs') }}
    where {{ in_dates('cutoff_date', cutoffs_to_build) }}

),

labels as (

    select
        features.customer_cutoff_id,
        features.customer_id,
        coalesce(
            customers.cancelled_at >= cast(cutoffs.cutoff_date as timestamp)
            and customers.cancelled_at
            < cast(cutoffs.horizon_end_date as timestamp),
            false
        ) as is_churned_in_horizon,
        '{{ newest_batch_id }}' as batch_id,
        features.cutoff_date

    from features
    inner join cutoffs
        on features.cutoff_date = cutoffs.cutoff_date
    inner join customers
        on features.customer_id = customers.customer_id

)

select * from labels
