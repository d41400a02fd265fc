{#-
    How the incremental models find their work.

    Every incremental model carries `batch_id`: the newest ingestion batch
    behind its rows. Ingestion writes whole batches, so a date whose events
    came in a batch newer than the newest one a model has taken in is a
    date that model must recompute. The dates are looked up with
    `run_query` and rendered as literals, so Spark prunes partitions
    statically and a model never reads the table it overwrites.

    Before the tables exist (`dbt compile` on a fresh warehouse, sqlfluff's
    dbt templater) the lookups return nothing instead of failing.
-#}

{% macro built_from_batch() -%}
    {#- SQL for the newest ingestion batch this model has already taken in;
        '' on a full build. -#}
    {%- if is_incremental() -%}
        (select coalesce(max(batch_id), '') from {{ this }})
    {%- else -%}
        ''
    {%- endif -%}
{%- endmacro %}


{% macro dates_with_new_batches(relation, date_column, batch_column) -%}
    {#- Sorted 'YYYY-MM-DD' strings: the dates of `relation` holding rows
        from batches newer than this model's newest. Every date on a full
        build. -#}
    {%- if not execute or load_relation(relation) is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select distinct cast({{ date_column }} as string)
        from {{ relation }}
        where {{ batch_column }} > {{ built_from_batch() }}
        order by 1
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}


{% macro newest_batch(relation) -%}
    {#- The newest ingestion batch in `relation` (which has `batch_id`). -#}
    {%- if not execute or load_relation(relation) is none -%}
        {{ return('') }}
    {%- endif -%}
    {%- set query -%}
        select coalesce(max(batch_id), '') from {{ relation }}
    {%- endset -%}
    {{ return(run_query(query).columns[0].values()[0]) }}
{%- endmacro %}


{% macro cutoffs_to_refresh(
    cutoffs, changed_dates, reach_back_days=0, where='true'
) -%}
    {#- Sorted cutoff dates (strings) an incremental run recomputes: the
        cutoffs of `cutoffs` (ref('int_cutoffs')) matching `where` that a
        changed date can reach (cutoff > changed date - reach_back_days),
        plus those not built yet. Every matching cutoff on a full build. -#}
    {%- if not execute or load_relation(cutoffs) is none -%}
        {{ return([]) }}
    {%- endif -%}
    {%- set query -%}
        select cast(cutoff_date as string)
        from {{ cutoffs }}
        where true and ({{ where }})
        {% if is_incremental() -%}
        and (
            cutoff_date not in (select cutoff_date from {{ this }})
            {% if changed_dates %}
            or cutoff_date > date_sub(
                date'{{ changed_dates | min }}', {{ reach_back_days }}
            )
            {% endif %}
        )
        {%- endif %}
        order by 1
    {%- endset -%}
    {{ return(run_query(query).columns[0].values() | list) }}
{%- endmacro %}


{% macro where_new_days(date_column, new_days) -%}
    {#- On an incremental run, keep only the rows of `new_days` (from
        dates_with_new_batches); nothing on a full build. -#}
    {%- if is_incremental() -%}
        where {{ in_dates(date_column, new_days) }}
    {%- endif -%}
{%- endmacro %}


{% macro in_dates(column, dates) -%}
    {#- `column in (date literals)`; an empty list matches nothing. -#}
    {%- if dates | length == 0 -%}
        false
    {%- else -%}
        {{ column }} in (
            {%- for day in dates -%}
                date'{{ day }}'{{ ', ' if not loop.last }}
            {%- endfor -%}
        )
    {%- endif -%}
{%- endmacro %}


{% macro drop_cutoffs_not_in(cutoffs, where='true') -%}
    {#- Post-hook of the cutoff-partitioned models: drop the partitions of
        cutoffs that no longer exist (the previous scoring cutoff once new
        days arrive) or no longer match `where`. -#}
    {%- if execute and is_incremental() -%}
        {%- set query -%}
            select distinct cast(cutoff_date as string) from {{ this }}
            where cutoff_date not in (
                select cutoff_date from {{ cutoffs }} where {{ where }}
            )
        {%- endset -%}
        {%- for day in run_query(query).columns[0].values() -%}
            {%- do run_query(
                "alter table " ~ this ~ " drop if exists partition "
                ~ "(cutoff_date = date'" ~ day ~ "')"
            ) -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}
