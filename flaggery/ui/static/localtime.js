// Shows each <time data-local datetime="..."> instant in the browser's own time zone too,
// beside the UTC text the server rendered (which stays if scripts are off).
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time[data-local]").forEach(function (element) {
    var instant = new Date(element.getAttribute("datetime"));
    if (isNaN(instant.getTime())) return;
    var local = document.createElement("span");
    local.className = "muted local-time";
    local.textContent = " · local " + instant.toLocaleString();
    element.after(local);
  });
});
