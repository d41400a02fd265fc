{% macro window_sum(column, first_day, last_day) -%}
    {#- Sum of a daily measure over the days `first_day`..`last_day` before
        the cutoff (1 = the day just before it). -#}
    sum(
        case
            when days_before_cutoff between {{ first_day }} and {{ last_day }}
                then {{ column }}
            else 0
        end
    )
{%- endmacro %}
