"""A deterministic stand-in for the model: answers support questions from a keyword table.

conftest.py serves it through pytest-llmeval's loopback OpenAI-compatible server, so the
example eval needs no network and no API key and gives the same scores everywhere.
"""

KNOWLEDGE = {
    "refund": "Refunds are issued within 14 days to the original payment method.",
    "password": "Reset your password from Settings > Security > Reset password.",
    "shipping": "Standard shipping takes 3-5 business days; express takes 1-2.",
    "invoice": "Invoices are in Billing > History and can be downloaded as PDF.",
    "cancel": "You can cancel any time from Billing > Plan; access lasts until the period ends.",
    "hours": "Support is open Monday to Friday, 9:00-18:00 CET.",
    "export": "Export your data as CSV or JSON from Settings > Data > Export.",
    "delete": "Deleting your account is permanent; use Settings > Account > Delete.",
}


def reply(request: dict) -> str:
    """The loopback server's answer function: the request is the chat-completions body."""
    question = request["messages"][-1]["content"].lower()
    for keyword, text in KNOWLEDGE.items():
        if keyword in question:
            return text
    return "I'm not sure; a human agent will follow up by email."
