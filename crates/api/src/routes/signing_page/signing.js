// The signing page works without this script. With it, the first submit marks the page
// busy and disables both buttons, so a second click cannot post again while signing.
document.addEventListener("DOMContentLoaded", function () {
  var sent = false;
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (sent) {
        event.preventDefault();
        return;
      }
      sent = true;
      // After this event: a button disabled while its form is being submitted would cancel
      // the submission.
      setTimeout(function () {
        document.querySelectorAll("button").forEach(function (b) { b.disabled = true; });
        var busy = document.querySelector(".busy");
        if (busy) { busy.hidden = false; }
      }, 0);
    });
  });
});
