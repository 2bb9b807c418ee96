"""The page's words in Chinese and English (`?lang=en`; Chinese by default)."""
from __future__ import annotations

TEXTS: dict[str, dict[str, str]] = {
    "title": {"zh": "收银台", "en": "Checkout"},
    "amount": {"zh": "支付金额", "en": "Amount"},
    "order": {"zh": "订单号", "en": "Order"},
    "your_cards": {"zh": "已绑定的银行卡", "en": "Your cards"},
    "use_card": {"zh": "使用此卡", "en": "Use this card"},
    "new_card": {"zh": "添加新卡", "en": "Add a new card"},
    "debit": {"zh": "借记卡", "en": "Debit card"},
    "credit": {"zh": "信用卡", "en": "Credit card"},
    "pan": {"zh": "卡号", "en": "Card number"},
    "name": {"zh": "持卡人姓名", "en": "Cardholder's name"},
    "id_number": {"zh": "身份证号", "en": "ID number"},
    "phone": {"zh": "银行预留手机号", "en": "Phone number at the bank"},
    "cvv2": {"zh": "CVV2", "en": "CVV2"},
    "expiry": {"zh": "有效期 (MM/YY)", "en": "Expiry (MM/YY)"},
    "bind": {"zh": "验证并绑定", "en": "Verify and bind"},
    "sms_sent": {"zh": "验证码已发送至银行预留手机", "en": "A code was sent to the phone the bank has"},
    "sms_why": {"zh": "本次支付的通道需要签约一次", "en": "The channel this payment goes through needs a one-time signing"},
    "code": {"zh": "短信验证码", "en": "SMS code"},
    "confirm": {"zh": "确认签约", "en": "Confirm"},
    "resend": {"zh": "重新发送", "en": "Send again"},
    "pay": {"zh": "确认支付", "en": "Pay"},
    "paying": {"zh": "支付处理中…", "en": "Payment in progress…"},
    "succeeded": {"zh": "支付成功", "en": "Payment succeeded"},
    "failed": {"zh": "支付失败", "en": "Payment failed"},
    "expired": {"zh": "支付链接已过期，请返回商户重新发起", "en": "This payment link has expired: go back to the merchant"},
    "locked": {"zh": "验证码错误次数过多，签约已锁定", "en": "Too many wrong codes: signing is locked"},
    "bad_link": {"zh": "支付链接无效", "en": "This payment link is not valid"},
    "back": {"zh": "返回商户", "en": "Back to the merchant"},
    "can_pay": {"zh": "可支付", "en": "Can pay now"},
    "not_now": {"zh": "此卡当前不可用", "en": "This card cannot pay now"},
    "over_limit": {"zh": "超出今日可用额度，今日最多可付 ¥{up_to}", "en": "Over today's limit: pay up to ¥{up_to} today"},
    "split": {"zh": "将拆分为 {n} 笔通过不同通道支付", "en": "Splits across {n} channels"},
    "unknown": {"zh": "额度未知，以支付结果为准", "en": "Limit unknown: the payment will tell"},
    "wrong_code": {"zh": "验证码错误，还可尝试 {left} 次", "en": "Wrong code: {left} tries left"},
    "resend_wait": {"zh": "请 {s} 秒后再发送", "en": "Send again in {s} s"},
    "too_many_sends": {"zh": "发送次数已达上限", "en": "No more codes can be sent for this payment"},
    "bind_failed": {"zh": "银行卡验证未通过：{reason}", "en": "The card was not verified: {reason}"},
    "not_now_state": {"zh": "当前步骤不能进行此操作", "en": "That cannot be done at this step"},
    "too_many": {"zh": "操作过于频繁，请稍后再试", "en": "Too many attempts: try again in a minute"},
    "csrf": {"zh": "页面已过期，请刷新", "en": "This form is stale: reload the page"},
    "bank_unknown": {"zh": "暂不支持该银行的卡", "en": "Cards of this bank are not supported"},
    "lang_other": {"zh": "English", "en": "中文"},
}


def t(key: str, lang: str, **values) -> str:
    entry = TEXTS.get(key) or {"zh": key, "en": key}
    return entry.get(lang, entry["zh"]).format(**values)
