// The caseworker's app: the one script. It imports an enrolment file,
// adds files by picker or drag and drop, sends the testimony as one
// multipart request (metadata first, then notes, then each file in order) and shows the progress the app
// reports. Every text it shows comes from the page (data- attributes) or
// from the app's answers, already translated.
"use strict";

(function () {
  var csrf = document.querySelector('meta[name="csrf"]').getAttribute("content");

  document.querySelectorAll("[data-copy]").forEach(function (b) {
    b.addEventListener("click", function () {
      var field = document.getElementById(b.getAttribute("data-copy"));
      field.select();
      if (navigator.clipboard) {
        navigator.clipboard.writeText(field.value);
      } else {
        document.execCommand("copy");
      }
      b.textContent = b.getAttribute("data-copied");
    });
  });

  // The outbox refreshes itself while something is being sent or checked.
  if (document.getElementById("refresh")) {
    setTimeout(function () { location.reload(); }, 2000);
  }

  // Enrolment: an enrolment file, chosen or dropped, is posted to the app,
  // which reads it and answers with the values for the form; the
  // organisation key is then typed from the card.
  var imp = document.getElementById("enrol-import");
  if (imp) {
    var enrolInput = document.getElementById("enrol-file");
    var enrolDrop = document.getElementById("enrol-drop");
    var enrolErr = document.getElementById("enrol-error");
    var importFile = function (f) {
      if (!f) { return; }
      enrolErr.hidden = true;
      var fd = new FormData();
      fd.append("file", f, "enrolment");
      var x = new XMLHttpRequest();
      x.open("POST", "/enrol/import");
      x.setRequestHeader("X-CSRF-Token", csrf);
      x.onload = function () {
        var r = {};
        try { r = JSON.parse(x.responseText); } catch (err) { r = {}; }
        if (x.status !== 200) {
          enrolErr.textContent = r.error || imp.getAttribute("data-failed");
          enrolErr.hidden = false;
          return;
        }
        document.getElementById("f-server").value = r.server;
        document.getElementById("f-pin").value = r.pin;
        document.getElementById("f-ca").value = r.ca;
        document.getElementById("f-log-key").value = r.log_key;
        document.getElementById("f-token").value = r.token;
        document.getElementById("f-file-org").value = r.org_key_name;
        document.getElementById("f-org-name").textContent = r.org_key_name;
        var org = document.getElementById("f-org-key");
        org.value = "";
        document.getElementById("imported").hidden = false;
        org.focus();
      };
      x.onerror = function () {
        enrolErr.textContent = imp.getAttribute("data-failed");
        enrolErr.hidden = false;
      };
      x.send(fd);
    };
    enrolInput.addEventListener("change", function () { importFile(enrolInput.files[0]); enrolInput.value = ""; });
    ["dragenter", "dragover"].forEach(function (t) {
      enrolDrop.addEventListener(t, function (e) { e.preventDefault(); enrolDrop.classList.add("over"); });
    });
    enrolDrop.addEventListener("dragleave", function () { enrolDrop.classList.remove("over"); });
    enrolDrop.addEventListener("drop", function (e) {
      e.preventDefault();
      enrolDrop.classList.remove("over");
      importFile(e.dataTransfer.files[0]);
    });
    window.addEventListener("dragover", function (e) { e.preventDefault(); });
    window.addEventListener("drop", function (e) { e.preventDefault(); });
  }

  var form = document.getElementById("testimony");
  if (!form) {
    return;
  }
  var files = [];
  var list = document.getElementById("filelist");
  var drop = document.getElementById("drop");
  var input = document.getElementById("files");
  var preset = document.getElementById("consent-preset");
  var consent = document.getElementById("consent");

  preset.addEventListener("change", function () {
    var o = preset.options[preset.selectedIndex];
    if (o.getAttribute("data-text")) {
      consent.value = o.getAttribute("data-text");
    }
  });

  function size(n) {
    if (n >= 1e9) { return (n / 1e9).toFixed(1) + " GB"; }
    if (n >= 1e6) { return (n / 1e6).toFixed(1) + " MB"; }
    if (n >= 1e3) { return Math.round(n / 1e3) + " KB"; }
    return n + " B";
  }

  function render() {
    list.textContent = "";
    if (files.length === 0) {
      var li = document.createElement("li");
      li.textContent = form.getAttribute("data-none");
      list.appendChild(li);
    }
    files.forEach(function (f, i) {
      var li = document.createElement("li");
      var name = document.createElement("span");
      name.textContent = f.name + " (" + size(f.size) + ")";
      var rm = document.createElement("button");
      rm.type = "button";
      rm.className = "secondary small";
      rm.textContent = form.getAttribute("data-remove");
      rm.addEventListener("click", function () { files.splice(i, 1); render(); });
      li.appendChild(name);
      li.appendChild(rm);
      list.appendChild(li);
    });
  }

  function add(fileList) {
    for (var i = 0; i < fileList.length; i++) {
      var f = fileList[i];
      var dup = files.some(function (g) { return g.name === f.name && g.size === f.size; });
      if (!dup) { files.push(f); }
    }
    render();
  }

  input.addEventListener("change", function () { add(input.files); input.value = ""; });
  ["dragenter", "dragover"].forEach(function (t) {
    drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
  });
  drop.addEventListener("dragleave", function () { drop.classList.remove("over"); });
  drop.addEventListener("drop", function (e) {
    e.preventDefault();
    drop.classList.remove("over");
    add(e.dataTransfer.files);
  });
  // A file dropped outside the box must not make the browser open it.
  window.addEventListener("dragover", function (e) { e.preventDefault(); });
  window.addEventListener("drop", function (e) { e.preventDefault(); });
  render();

  var box = document.getElementById("progress");
  function show(st) {
    document.getElementById("p-text").textContent = st.text || "";
    document.getElementById("p-summary").textContent = st.summary || "";
    document.getElementById("p-detail").textContent = st.detail || "";
    document.getElementById("p-bar").value = st.percent || 0;
    var ul = document.getElementById("p-files");
    ul.textContent = "";
    (st.files || []).forEach(function (f) {
      var li = document.createElement("li");
      var name = document.createElement("span");
      name.textContent = f.name;
      var txt = document.createElement("span");
      txt.textContent = f.text;
      var bar = document.createElement("progress");
      bar.max = 100;
      bar.value = f.percent;
      li.appendChild(name);
      li.appendChild(txt);
      li.appendChild(bar);
      ul.appendChild(li);
    });
    box.setAttribute("data-phase", st.phase || "");
    if (st.done) {
      document.getElementById("p-done").hidden = false;
      if (st.receipt) {
        document.getElementById("p-receipt").href = st.receipt;
      } else {
        document.getElementById("p-receipt").hidden = true;
      }
    }
  }

  var seen = false;
  var failed = false;
  function poll(job) {
    if (failed) { return; }
    var x = new XMLHttpRequest();
    x.open("GET", "/status?job=" + encodeURIComponent(job));
    x.onload = function () {
      var st = {};
      try { st = JSON.parse(x.responseText); } catch (e) { st = {}; }
      if (x.status === 404 && !seen) {
        setTimeout(function () { poll(job); }, 300);
      } else if (x.status === 200) {
        seen = true;
        show(st);
        if (!st.done) { setTimeout(function () { poll(job); }, 500); }
      } else {
        show({ text: st.error || form.getAttribute("data-failed"), done: true });
      }
    };
    x.onerror = function () { setTimeout(function () { poll(job); }, 2000); };
    x.send();
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var meta = {
      case: form.elements["case"].value,
      lang: form.elements["lang"].value,
      date: form.elements["date"].value,
      consent: consent.value,
      label: form.elements["label"].value,
      files: files.map(function (f) { return { name: f.name, size: f.size }; })
    };
    var fd = new FormData();
    fd.append("meta", JSON.stringify(meta));
    fd.append("notes", form.elements["notes"].value);
    files.forEach(function (f) { fd.append("file", f, "file"); });
    document.getElementById("send").disabled = true;
    form.hidden = true;
    box.hidden = false;
    // The job's name is chosen here, so its progress can be followed
    // while the files are still being read.
    var rnd = new Uint8Array(16);
    crypto.getRandomValues(rnd);
    var job = Array.prototype.map.call(rnd, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
    var x = new XMLHttpRequest();
    x.open("POST", "/submit");
    x.setRequestHeader("X-CSRF-Token", csrf);
    x.setRequestHeader("X-Job", job);
    x.onload = function () {
      var r = {};
      try { r = JSON.parse(x.responseText); } catch (err) { r = {}; }
      if (x.status !== 202) {
        failed = true;
        show({ text: r.error || form.getAttribute("data-failed"), done: true });
      }
    };
    x.onerror = function () { failed = true; show({ text: form.getAttribute("data-failed"), done: true }); };
    x.send(fd);
    poll(job);
  });
})();

// The handlers above are in place: tests wait for this mark before they
// drop or choose files, since the script is deferred.
document.documentElement.setAttribute("data-ready", "");
