// The skip link moves focus to the page's content without touching the URL's fragment, which
// holds the page's permalink state on Explore, Compare and Generate (without JS, the plain link
// still jumps to #main).
const link = document.querySelector(".skip-link");
const main = document.getElementById("main");

link?.addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
  main.scrollIntoView();
});
