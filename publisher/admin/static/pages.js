/* The import page's script (served from /admin/static/; the CSP allows no inline script).
 *
 * - #import-form[data-upload]: sends the chosen file as the raw body of a POST (so the
 *   server can stream it to disk), with the CSRF token in X-CSRF-Token, showing the upload's
 *   progress; then follows the import job the server started;
 * - [data-import]: keeps an import's progress bar, counts and rejected rows current from
 *   the job's JSON until it has finished.
 */
(function () {
  "use strict";

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) { el.textContent = value; }
  }

  function showJob(d) {
    var bar = document.getElementById("import-progress");
    if (bar) { bar.value = d.percent; bar.textContent = d.percent + "%"; bar.dataset.state = d.state; }
    text("import-state", d.state);
    text("import-counts", d.done + " of " + d.total + " lines");
    if (d.finished) {
      text("import-summary", d.state === "failed" ? "Refused: " + d.error :
        d.added + " added, " + d.present + " already present, " + d.rejected + " rejected.");
    }
    var list = document.getElementById("import-errors");
    if (list && list.children.length !== d.errors.length) {
      list.textContent = "";
      d.errors.forEach(function (line) {
        var li = document.createElement("li");
        var code = document.createElement("code");
        code.className = "wrap";
        code.textContent = line;
        li.appendChild(code);
        list.appendChild(li);
      });
    }
    var box = document.getElementById("import-job");
    if (box) { box.dataset.state = d.state; box.dataset.finished = String(d.finished); }
  }

  function follow(url) {
    var box = document.getElementById("import-job");
    if (box) { box.dataset.import = url; }
    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) { throw new Error(String(r.status)); } return r.json(); })
        .then(function (d) { showJob(d); if (!d.finished) { setTimeout(poll, 500); } })
        .catch(function () { setTimeout(poll, 2000); });
    }
    poll();
  }

  function upload(form) {
    var input = document.getElementById("file");
    var file = input && input.files && input.files[0];
    if (!file) { return; }
    var pending = document.getElementById("pending");
    var status = document.getElementById("import-status");
    var bar = document.getElementById("upload-progress");
    status.hidden = false;
    text("upload-line", "Uploading " + file.name + "…");
    var url = form.dataset.upload + "?filename=" + encodeURIComponent(file.name) +
      (pending && pending.checked ? "&pending=1" : "");
    var xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
    xhr.setRequestHeader("Content-Type", "text/csv");
    xhr.upload.addEventListener("progress", function (e) {
      if (e.lengthComputable) { bar.value = Math.floor(e.loaded * 100 / e.total); }
    });
    xhr.addEventListener("load", function () {
      var d = null;
      try { d = JSON.parse(xhr.responseText); } catch (err) { d = null; }
      if (xhr.status === 202 && d) {
        bar.value = 100;
        text("upload-line", "Uploaded " + file.name + ". Importing:");
        document.getElementById("import-progress-box").hidden = false;
        var link = document.createElement("a");
        link.href = d.page;
        link.textContent = " (this import's own page)";
        document.getElementById("upload-line").appendChild(link);
        showJob(d);
        follow(d.progress);
      } else {
        text("upload-line", "Not imported: " + (d && d.error ? d.error : "the server answered " + xhr.status) + ".");
        status.dataset.refused = String(xhr.status);
      }
    });
    xhr.addEventListener("error", function () { text("upload-line", "The upload failed: check the connection and try again."); });
    xhr.send(file);
  }

  document.addEventListener("DOMContentLoaded", function () {
    var form = document.getElementById("import-form");
    if (form) {
      form.addEventListener("submit", function (e) { e.preventDefault(); upload(form); });
    }
    var job = document.querySelector("[data-import]");
    if (job && job.dataset.import && job.dataset.finished !== "true") { follow(job.dataset.import); }
  });
})();
