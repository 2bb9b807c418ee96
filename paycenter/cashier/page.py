"""The cashier page, rendered from the session's state on every load (no card data: after entry a
card is its bank, type and last 4 digits; the number fields are never filled back in)."""
from __future__ import annotations

from html import escape

from paycenter.cashier.texts import t
from processors.cashier import session as s
from processors.cashier.cards import CanPay


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}"


def _form(action: str, csrf: str, lang: str, body: str, button: str, name: str = "") -> str:
    return (f'<form method="post" action="{action}?lang={lang}" data-form="{name}">'
            f'<input type="hidden" name="csrf" value="{csrf}">{body}'
            f'<button type="submit" id="btn-{name}">{escape(button)}</button></form>')


def _field(key: str, lang: str, kind: str = "text", pattern: str = "", error: str = "") -> str:
    err = f'<p class="error" id="err-{key}">{escape(error)}</p>' if error else f'<p class="error" id="err-{key}"></p>'
    return (f'<label>{escape(t(key, lang))}<input name="{key}" id="f-{key}" type="{kind}" autocomplete="off" '
            f'{pattern}></label>{err}')


def _advice(can: CanPay, lang: str) -> str:
    if can.ok is None:
        return f'<span class="advice unknown">{t("unknown", lang)}</span>'
    if can.ok and can.why == "split":
        return f'<span class="advice split">{t("split", lang, n=can.split_channels)}</span>'
    if can.ok and can.why == "sign":
        return f'<span class="advice ok sign">{t("can_pay_sign", lang)}</span>'
    if can.ok:
        return f'<span class="advice ok">{t("can_pay", lang)}</span>'
    if can.why == "over_limit":
        return f'<span class="advice no">{t("over_limit", lang, up_to=_yuan(can.up_to_fen))}</span>'
    why = "，".join(t(r, lang) for r in can.reasons) if lang == "zh" else ", ".join(t(r, lang) for r in can.reasons)
    return f'<span class="advice no">{t("not_now", lang)}{(": " + escape(why)) if why else ""}</span>'


def _why_code(sess: s.Session, lang: str) -> str:
    if sess.unavailable_channels:
        sep = "、" if lang == "zh" else ", "
        return t("sms_failover", lang, failed=sep.join(sess.unavailable_channels), channel=sess.sign_channel)
    return t("sms_why", lang, channel=sess.sign_channel)


def _card_label(card: s.Card, lang: str) -> str:
    return f'{escape(card.bank_code)} {t("credit" if card.card_type == "CREDIT" else "debit", lang)} •••• {card.last4}'


def render(sess: s.Session, lang: str, base: str, csrf: str, cards: list[tuple[s.Card, CanPay]],
           errors: dict[str, str] | None = None, notice: str = "", result_url: str = "") -> str:
    state, body = sess.state, []
    if notice:
        body.append(f'<p class="notice" id="notice">{escape(notice)}</p>')
    if state == s.CREATED:
        if cards:
            body.append(f'<h2>{t("your_cards", lang)}</h2><ul class="cards">')
            for card, can in cards:
                # a card that cannot pay this amount is not offered: it says why and what would work
                use = (_form(f"{base}/choose", csrf, lang, f'<input type="hidden" name="card" value="{escape(card.token)}">',
                             t("use_card", lang), "choose") if can.ok is not False
                       else f'<p class="pick-another">{t("pick_another", lang)}</p>')
                body.append(f'<li class="card" data-token="{escape(card.token)}"><span>{_card_label(card, lang)}</span>'
                            f'{_advice(can, lang)}{use}</li>')
            body.append('</ul>')
        errs = errors or {}
        fields = ('<div class="types"><label><input type="radio" name="card_type" value="DEBIT" checked> '
                  f'{t("debit", lang)}</label><label><input type="radio" name="card_type" value="CREDIT"> '
                  f'{t("credit", lang)}</label></div>'
                  + _field("pan", lang, "text", 'inputmode="numeric" maxlength="23"', errs.get("pan", ""))
                  + _field("name", lang, error=errs.get("name", ""))
                  + _field("id_number", lang, error=errs.get("id_number", ""))
                  + _field("phone", lang, "tel", 'maxlength="11"', errs.get("phone", ""))
                  + '<div class="credit-only">' + _field("cvv2", lang, "password", 'maxlength="3"', errs.get("cvv2", ""))
                  + _field("expiry", lang, error=errs.get("expiry", "")) + '</div>')
        body.append(f'<h2>{t("new_card", lang)}</h2>' + _form(f"{base}/card", csrf, lang, fields, t("bind", lang), "card"))
    elif sess.card is not None and state in (s.CARD_CHOSEN, s.SIGNED, s.VERIFIED, s.SMS_SENT):
        body.append(f'<p class="chosen" id="chosen">{_card_label(sess.card, lang)}</p>')
        if state == s.SMS_SENT:
            body.append(f'<p>{t("sms_sent", lang)}</p><p class="why" id="why" data-channel="{escape(sess.sign_channel)}">'
                        f'{escape(_why_code(sess, lang))}</p>'
                        + _form(f"{base}/code", csrf, lang, _field("code", lang, "text", 'inputmode="numeric" maxlength="8"'),
                                t("confirm", lang), "code")
                        + _form(f"{base}/resend", csrf, lang, "", t("resend", lang), "resend"))
        else:
            body.append(_form(f"{base}/pay", csrf, lang, "", t("pay", lang), "pay"))
    elif state == s.PAYING:
        body.append(f'<p class="status" id="status" data-poll="{base}/state">{t("paying", lang)}</p>')
    else:
        key = {s.SUCCEEDED: "succeeded", s.FAILED: "failed", s.EXPIRED: "expired", s.LOCKED: "locked"}[state]
        back = f'<a id="back" href="{escape(result_url)}">{t("back", lang)}</a>' if result_url else ""
        body.append(f'<p class="status terminal" id="status" data-redirect="{escape(result_url)}">{t(key, lang)}</p>{back}')
    return _shell(lang, f'{base}?lang={"en" if lang == "zh" else "zh"}', sess, "".join(body))


def _shell(lang: str, other: str, sess: s.Session | None, main: str) -> str:
    head = ""
    if sess is not None:
        head = (f'<p class="amount">{t("amount", lang)} <strong id="amount">¥{_yuan(sess.amount_fen)}</strong></p>'
                f'<p class="order">{t("order", lang)} {escape(sess.order_id)}</p>')
    state = escape(sess.state) if sess is not None else "INVALID"
    return (f'<!doctype html><html lang="{"zh-CN" if lang == "zh" else "en"}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{t("title", lang)}</title><link rel="stylesheet" href="/static/cashier.css"></head>'
            f'<body data-state="{state}"><main><header><h1>{t("title", lang)}</h1>'
            f'<a class="lang" href="{escape(other)}">{t("lang_other", lang)}</a></header>{head}{main}</main>'
            '<script src="/static/cashier.js"></script></body></html>')


def terminal(lang: str, key: str) -> str:
    return _shell(lang, f"?lang={'en' if lang == 'zh' else 'zh'}", None,
                  f'<p class="status terminal" id="status">{t(key, lang)}</p>')
