// The cashier page: check the card form before it is sent (Luhn, lengths), follow a payment, and
// go back to the merchant when it is final. No card data is kept or sent anywhere but the form post.
(function () {
  function luhn(d) {
    var sum = 0;
    for (var i = 0; i < d.length; i++) {
      var n = +d[d.length - 1 - i];
      if (i % 2) { n *= 2; if (n > 9) n -= 9; }
      sum += n;
    }
    return sum % 10 === 0;
  }
  var checks = {
    pan: function (v) { v = v.replace(/ /g, ""); return /^[0-9]{13,19}$/.test(v) && luhn(v); },
    name: function (v) { return v.trim().length >= 2 && v.trim().length <= 40; },
    id_number: function (v) { return /^[0-9]{17}[0-9Xx]$/.test(v.trim()); },
    phone: function (v) { return /^1[3-9][0-9]{9}$/.test(v.trim()); },
    cvv2: function (v) { return /^[0-9]{3}$/.test(v.trim()); },
    expiry: function (v) { return /^(0[1-9]|1[0-2])\/[0-9]{2}$/.test(v.trim()); }
  };
  var form = document.querySelector('form[data-form="card"]');
  if (form) {
    var credit = function () { return form.querySelector('input[name="card_type"]:checked').value === "CREDIT"; };
    var sync = function () { document.body.classList.toggle("credit", credit()); };
    form.addEventListener("change", sync); sync();
    form.addEventListener("submit", function (e) {
      var bad = false;
      Object.keys(checks).forEach(function (k) {
        var input = form.querySelector('[name="' + k + '"]'), err = document.getElementById("err-" + k);
        var needed = credit() || (k !== "cvv2" && k !== "expiry");
        var wrong = needed && !checks[k](input.value);
        err.textContent = wrong ? "✗" : ""; input.setAttribute("aria-invalid", wrong ? "true" : "false");
        bad = bad || wrong;
      });
      if (bad) { e.preventDefault(); document.body.setAttribute("data-invalid", "1"); }
    });
  }
  document.querySelectorAll("form").forEach(function (f) {
    f.addEventListener("submit", function (e) {
      if (e.defaultPrevented) return;
      var b = f.querySelector("button"); if (b) b.disabled = true;  // one click, one post
    });
  });
  var status = document.getElementById("status");
  if (status && status.dataset.poll) {
    var poll = function () {
      fetch(status.dataset.poll, {credentials: "same-origin"}).then(function (r) { return r.json(); })
        .then(function (s) { if (s.state !== "PAYING") location.reload(); else setTimeout(poll, 500); })
        .catch(function () { setTimeout(poll, 1000); });
    };
    setTimeout(poll, 300);
  }
  if (status && status.dataset.redirect) {
    setTimeout(function () { location.href = status.dataset.redirect; }, 3000);
  }
})();
