package vercelsim

// frameworks are the framework presets Vercel's project and deployment
// schemas allow. A framework outside the list is refused with 400, as
// Vercel does, rather than echoed into an answer that breaks the schema.
var frameworks = []string{
	"blitzjs", "nextjs", "gatsby", "remix", "react-router", "astro", "hexo", "eleventy",
	"docusaurus-2", "docusaurus", "preact", "solidstart-1", "solidstart", "dojo", "ember",
	"vue", "scully", "ionic-angular", "angular", "polymer", "svelte", "sveltekit",
	"sveltekit-1", "ionic-react", "create-react-app", "gridsome", "umijs", "sapper",
	"saber", "stencil", "nuxtjs", "redwoodjs", "hugo", "jekyll", "brunch", "middleman",
	"zola", "hydrogen", "vite", "vitepress", "vuepress", "parcel", "fastapi", "flask",
	"fasthtml", "sanity-v3", "sanity", "storybook", "nitro", "hono", "express", "h3",
	"nestjs", "fastify", "xmcp",
}
