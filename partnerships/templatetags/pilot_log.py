"""The Pilot index's "Recent actions", limited to what the operator may see."""

from django import template

from partnerships.scoping import admin_log_for_operator

register = template.Library()


@register.simple_tag(takes_context=True)
def pilot_admin_log(context, limit: int = 10) -> list:
    return admin_log_for_operator(request=context["request"], limit=limit)
