"""The ``template`` writer: a campaign's own Jinja ``message_template`` (the behaviour
before generated copy), so an A/B can measure generated copy against it.

The per-customer template variables travel in ``brief.extra["template_context"]`` (built
by :func:`ml.campaigns.messages.message_context`); e-mails get the campaign name as
subject. Its messages pass the same guardrails as every other writer's.
"""

from __future__ import annotations

import jinja2

from ml.campaigns.copy.brief import CopyBrief
from ml.campaigns.copy.guardrails import Draft
from ml.campaigns.messages import compile_template, render_message


class TemplateWriter:
    """Renders one campaign's message template.

    Parameters
    ----------
    template : str
        The campaign's ``message_template`` (validated when compiled).
    campaign_id, campaign_name : str
        For error messages.
    """

    name = "template"
    version = "1"
    model = None
    cacheable = False

    def __init__(self, template: str, campaign_id: str, campaign_name: str) -> None:
        self.campaign_id, self.campaign_name = campaign_id, campaign_name
        self._template: jinja2.Template = compile_template(template, campaign_id, campaign_name)

    def write(self, brief: CopyBrief, feedback: list[str] | None = None) -> Draft:
        """Render the template (a retry renders the same text: templates do not vary)."""
        context = brief.extra["template_context"]
        body = render_message(self._template, context, self.campaign_id, self.campaign_name)
        subject = self.campaign_name if brief.limits.subject_chars is not None else None
        return Draft(body=body, subject=subject)
