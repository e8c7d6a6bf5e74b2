"""A tiny, deterministic stand-in for an LLM support assistant.

It answers from a keyword table, so the example eval runs offline and gives the same
scores on every machine. Swap `answer` for a call to your own app.
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


def answer(question: str) -> str:
    text = question.lower()
    for keyword, reply in KNOWLEDGE.items():
        if keyword in text:
            return reply
    return "I'm not sure; a human agent will follow up by email."
